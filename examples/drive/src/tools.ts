/**
 * The drive's tools, each registered with its policy (DESIGN.md's table).
 *
 * @module
 */
import { z } from 'zod'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { DownstreamCredentialError, callerOf, createToolRegistry } from '@callproof/server'
import type { DownstreamCredentials, ToolRegistry } from '@callproof/server'
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

/** The `_meta` key that lists the downstream services a tool calls on its caller's behalf. */
export const DOWNSTREAM_META_KEY = 'callproof/downstream'

/** The mail API the `email_file` tool sends through (see `@callproof/example-mail`). */
export interface DriveMail {
  /** The mail API's origin, e.g. `http://127.0.0.1:3100`; messages are posted to `/messages`. */
  readonly url: string
  /** Per-caller credentials with a `mail` service (token exchange for the caller of each call). */
  readonly credentials: DownstreamCredentials
}

/** Options of {@link driveTools}. */
export interface DriveToolsOptions {
  /** With a mail API, the drive also has `email_file`. */
  readonly mail?: DriveMail
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
export function driveTools(drives: Drives, options: DriveToolsOptions = {}): ToolRegistry {
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

  const mail = options.mail
  if (mail !== undefined) {
    const messages = new URL('/messages', mail.url)
    tools.register(
      'email_file',
      {
        description:
          'Email a file from your drive. The mail goes out as you: the drive obtains a mail credential for you alone.',
        inputSchema: { path: z.string(), to: z.string().min(1).max(256) },
        // Sending a file to someone is sharing it; the mail API is a downstream service, and
        // tools/list says so.
        policy: { scopes: ['drive:share'] },
        downstream: ['mail'],
        _meta: { [DOWNSTREAM_META_KEY]: ['mail'] },
      },
      async ({ path, to }, extra) => {
        const caller = callerOf(extra)
        let content: string | undefined
        try {
          content = drives.read(caller.sub, path)
        } catch (error) {
          if (error instanceof DrivePathError) return failure(error.message)
          throw error
        }
        if (content === undefined) return failure(`no such file: ${path}`)
        try {
          // For this call's caller, never for the process: bob's call can only ever send as bob.
          const credential = await mail.credentials.of(extra).get('mail')
          const response = await credential.fetch(messages, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ to, subject: path, text: content }),
          })
          const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>
          if (response.status !== 201) {
            return failure(
              `mail refused (${response.status}): ${String(
                answer['error_description'] ?? answer['error'] ?? '',
              )
                .replace(/[^\x20-\x7E]/g, '?')
                .slice(0, 200)}`,
            )
          }
          return text(JSON.stringify({ sent: path, to, from: answer['from'], id: answer['id'] }))
        } catch (error) {
          if (error instanceof DownstreamCredentialError) return failure(error.message)
          throw error
        }
      },
    )
  }

  return tools
}
