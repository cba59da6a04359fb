/**
 * The smallest callproof server: one tool, per-user data, a scope check, and every call proven.
 * Everything callproof-specific is in `startNotesServer` (under 20 lines).
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import { callerOf, createCallproof, createToolRegistry } from '@callproof/server'

/** Starts the notes server on 127.0.0.1:`port`, trusting tokens from `issuer`. */
export function startNotesServer(port: number, issuer: string) {
  const notes = new Map<string, string[]>() // one list per verified user, never per process
  const tools = createToolRegistry({ name: 'notes', version: '1.0.0' })
  tools.register(
    'add_note',
    { inputSchema: { text: z.string() }, policy: { scopes: ['notes:write'] } },
    ({ text }, extra) => {
      const mine = [...(notes.get(callerOf(extra).sub) ?? []), text]
      notes.set(callerOf(extra).sub, mine)
      return { content: [{ type: 'text', text: `${callerOf(extra).sub}: ${mine.join(' | ')}` }] }
    },
  )
  const app = new Hono()
  createCallproof({ resource: `http://127.0.0.1:${port}/mcp`, issuers: issuer, tools }).mount(app)
  return serve({ fetch: app.fetch, port, hostname: '127.0.0.1' })
}
