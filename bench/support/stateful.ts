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

/** What {@link statefulApp} needs of either SDK line's stateful transport. */
export interface SessionTransport {
  readonly sessionId?: string | undefined
  onclose?: (() => void) | undefined
  handleRequest(request: Request, options?: { parsedBody?: unknown }): Promise<Response>
}

/**
 * The idiomatic stateful server of either SDK line: a transport per session, created at
 * `initialize` (`open` builds it and connects a server to it), reused for every later request.
 */
export function statefulApp<T extends SessionTransport>(
  isInitialize: (body: unknown) => boolean,
  open: (onSession: (id: string) => void) => Promise<T>,
): Hono {
  const transports = new Map<string, T>()
  const app = new Hono()
  app.all('/mcp', async (c) => {
    const request = c.req.raw
    const sessionId = request.headers.get('mcp-session-id')
    const existing = sessionId !== null ? transports.get(sessionId) : undefined
    if (existing !== undefined) return existing.handleRequest(request)
    if (request.method !== 'POST') return c.text('no such session', 404)
    const body: unknown = await request.json()
    if (!isInitialize(body)) return c.text('no such session', 404)
    // The session id is set while `initialize` is handled, after `open` has returned.
    const transport: T = await open((id) => {
      transports.set(id, transport)
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId)
    }
    return transport.handleRequest(request, { parsedBody: body })
  })
  return app
}

/** The drive's tools on the SDK's idiomatic stateful server (a transport per session). */
export function statefulSdkApp(drives: Drives): Hono {
  return statefulApp(isInitializeRequest, async (onSession) => {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: onSession,
    })
    await plainDriveServer(drives).connect(transport)
    return transport
  })
}
