/**
 * The server a user would write instead of callproof, as the MCP SDK's own documentation shows
 * it: one `McpServer` and one stateful Streamable HTTP transport per session, created at
 * `initialize` and reused for every later request of that session, JSON responses, and no
 * authentication at all. It is the baseline of `npm run bench`'s second table: everything
 * callproof adds (token, proof, binding, replay, session owner, policy, audit) is its extra cost.
 */
import { Hono } from 'hono'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import type { Drives } from '@callproof/example-drive'
import { plainDriveServer } from './plain.js'

/** The drive's tools on the SDK's idiomatic stateful server (a transport per session). */
export function statefulSdkApp(drives: Drives): Hono {
  const transports = new Map<string, WebStandardStreamableHTTPServerTransport>()
  const app = new Hono()
  app.all('/mcp', async (c) => {
    const request = c.req.raw
    const sessionId = request.headers.get('mcp-session-id')
    const existing = sessionId !== null ? transports.get(sessionId) : undefined
    if (existing !== undefined) return existing.handleRequest(request)
    if (request.method !== 'POST') return c.text('no such session', 404)
    const body: unknown = await request.json()
    if (!isInitializeRequest(body)) return c.text('no such session', 404)
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        transports.set(id, transport)
      },
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId)
    }
    await plainDriveServer(drives).connect(transport)
    return transport.handleRequest(request, { parsedBody: body })
  })
  return app
}
