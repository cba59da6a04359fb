/**
 * The drive's tools, each registered with its policy (DESIGN.md's table).
 *
 * @module
 */
import { z } from 'zod'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { callerOf, createToolRegistry } from '@callproof/server'
import type { ToolRegistry } from '@callproof/server'
import { DrivePathError } from './files.js'
import type { Drives } from './files.js'

/** The acr value delete_file requires. */
export const MFA = 'urn:callproof:acr:mfa'

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] })
const failure = (value: string): CallToolResult => ({
  content: [{ type: 'text', text: value }],
  isError: true,
})

/** Runs a tool body; a bad path becomes a tool error instead of an exception. */
function guarded(body: () => CallToolResult): CallToolResult {
  try {
    return body()
  } catch (error) {
    if (error instanceof DrivePathError) return failure(error.message)
    throw error
  }
}

/**
 * Builds the drive's tool registry over `drives`.
 *
 * @example
 * ```ts
 * const tools = driveTools(new Drives())
 * createCallproof({ resource, issuers, tools })
 * ```
 */
export function driveTools(drives: Drives): ToolRegistry {
  const tools = createToolRegistry({ name: 'callproof-drive', version: '0.1.0' })

  tools.register(
    'whoami',
    { description: 'Who the server verified you to be.', policy: { public: true } },
    (extra) => {
      const caller = callerOf(extra)
      return text(
        JSON.stringify({
          sub: caller.sub,
          clientId: caller.clientId,
          jkt: caller.jkt,
          acr: caller.acr,
          scopes: caller.scopes,
        }),
      )
    },
  )

  tools.register(
    'list_files',
    { description: 'List the files in your drive.', policy: { scopes: ['drive:read'] } },
    (extra) => text(JSON.stringify(drives.list(callerOf(extra).sub))),
  )

  tools.register(
    'read_file',
    {
      description: 'Read a file from your drive.',
      inputSchema: { path: z.string() },
      policy: { scopes: ['drive:read'] },
    },
    ({ path }, extra) =>
      guarded(() => {
        const content = drives.read(callerOf(extra).sub, path)
        return content === undefined ? failure(`no such file: ${path}`) : text(content)
      }),
  )

  tools.register(
    'write_file',
    {
      description: 'Create or replace a file in your drive.',
      inputSchema: { path: z.string(), content: z.string() },
      policy: { scopes: ['drive:write'] },
    },
    ({ path, content }, extra) =>
      guarded(() => {
        const size = drives.write(callerOf(extra).sub, path, content)
        return text(`wrote ${path} (${size} bytes)`)
      }),
  )

  tools.register(
    'delete_file',
    {
      description: 'Delete a file from your drive (needs a recent multi-factor login).',
      inputSchema: { path: z.string() },
      policy: { scopes: ['drive:write'], acr: [MFA], maxAge: 300 },
    },
    ({ path }, extra) =>
      guarded(() =>
        drives.delete(callerOf(extra).sub, path)
          ? text(`deleted ${path}`)
          : failure(`no such file: ${path}`),
      ),
  )

  tools.register(
    'share_file',
    {
      description: 'Share a file with another user (each share needs your approval).',
      inputSchema: { path: z.string(), with: z.string().min(1).max(256) },
      policy: { scopes: ['drive:share'], approval: 'per-call' },
    },
    ({ path, with: withUser }, extra) =>
      guarded(() => {
        const entry = drives.share(callerOf(extra).sub, path, withUser)
        return entry === undefined ? failure(`no such file: ${path}`) : text(JSON.stringify(entry))
      }),
  )

  return tools
}
