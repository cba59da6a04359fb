/**
 * `callproof bridge --listen <port>`: the bridge as a Streamable HTTP MCP endpoint on 127.0.0.1,
 * for MCP clients that speak only HTTP. Each MCP session a client opens gets its own connection to
 * the callproof server (the same key and sign-in for all), and every request passes the guard
 * first (see `guard.ts`): the per-launch secret in the path, a loopback `Host` and `Origin`.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { admit, endpointPath, newSecret } from './guard.js'
import { pump } from './pump.js'
import type { Pump, PumpEvents } from './pump.js'

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Port on 127.0.0.1 (0: a free one). */
  readonly port: number
  /** A new transport to the callproof server, one per MCP session. */
  readonly remote: () => Transport
  readonly events: PumpEvents
}

/** The running endpoint. */
export interface Listening {
  /** The full endpoint URL, secret included: what the MCP client is given. */
  readonly url: string
  readonly port: number
  /** The address the socket is bound to: always 127.0.0.1. */
  readonly address: string
  close(): Promise<void>
}

/** Listens on 127.0.0.1 only; the secret is made here and leaves only in `url`. */
export async function listen(options: ListenOptions): Promise<Listening> {
  const secret = newSecret()
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; pump: Pump }>()
  let port = options.port

  const refuse = (res: ServerResponse, status: number) => {
    // No body, no reason: a caller without the secret learns nothing but the status.
    res.writeHead(status, { 'content-length': '0' }).end()
  }

  const open = async (): Promise<StreamableHTTPServerTransport> => {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => void sessions.set(id, { transport, pump: running }),
      onsessionclosed: (id) => void sessions.delete(id),
    })
    const running = await pump(transport, options.remote(), options.events, {
      routeToRequest: true,
    })
    void running.closed.then(() => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    })
    return transport
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const origin = req.headers.origin
    const verdict = admit(
      { url: req.url, host: req.headers.host, origin: Array.isArray(origin) ? origin[0] : origin },
      secret,
      port,
    )
    if (!verdict.ok) return refuse(res, verdict.status)
    const id = req.headers['mcp-session-id']
    if (typeof id === 'string') {
      const session = sessions.get(id)
      if (session === undefined) return refuse(res, 404)
      return session.transport.handleRequest(req, res)
    }
    if (req.method !== 'POST') return refuse(res, 400)
    // A new session: the transport answers anything but an initialize request with 400.
    const transport = await open()
    await transport.handleRequest(req, res)
    if (transport.sessionId === undefined) await transport.close()
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) refuse(res, 500)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // 127.0.0.1 only, never all interfaces: the endpoint is for this machine.
    server.listen(options.port, '127.0.0.1', () => resolve())
  })
  const bound = server.address() as AddressInfo
  port = bound.port
  return {
    url: `http://127.0.0.1:${port}${endpointPath(secret)}`,
    port,
    address: bound.address,
    close: async () => {
      await Promise.all([...sessions.values()].map((s) => s.pump.close()))
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
