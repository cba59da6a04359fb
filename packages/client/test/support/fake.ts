// A tiny configurable HTTP server on 127.0.0.1 that plays a hostile or broken MCP server or
// authorization server, and records every request it receives.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Recorded {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: string
}

export type Route = (
  req: Recorded,
  origin: string,
) => { status?: number; headers?: Record<string, string>; body?: unknown } | undefined

export interface Fake {
  origin: string
  requests: Recorded[]
  /** Connections currently open to this server. */
  readonly openConnections: number
  close(): Promise<void>
}

/**
 * Starts a fake on 127.0.0.1. `keepAliveTimeout` (ms) lets clients keep idle connections that
 * long (Node's default is 5 s), so a test can tell who closes them.
 */
export async function startFake(
  routes: Record<string, Route>,
  options: { keepAliveTimeout?: number } = {},
): Promise<Fake> {
  const requests: Recorded[] = []
  let open = 0
  let origin = ''
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', origin)
      const recorded = {
        method: req.method ?? 'GET',
        path: url.pathname,
        headers: req.headers,
        body,
      }
      requests.push(recorded)
      const route = routes[`${recorded.method} ${url.pathname}`] ?? routes[url.pathname]
      const answer = route?.(recorded, origin)
      if (!answer) {
        res.writeHead(404).end()
        return
      }
      const text =
        typeof answer.body === 'string'
          ? answer.body
          : answer.body === undefined
            ? ''
            : JSON.stringify(answer.body)
      res.writeHead(answer.status ?? 200, {
        ...(typeof answer.body !== 'string' &&
          answer.body !== undefined && { 'content-type': 'application/json' }),
        ...answer.headers,
      })
      res.end(text)
    })
  })
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  server.on('connection', (socket) => {
    open++
    socket.once('close', () => open--)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    requests,
    get openConnections() {
      return open
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** An MCP endpoint that always answers 401 with a DPoP challenge pointing at its metadata. */
export function unauthorized(path = '/mcp'): Route {
  return (_req, origin) => ({
    status: 401,
    headers: {
      'www-authenticate': `DPoP resource_metadata="${origin}/.well-known/oauth-protected-resource${path}", algs="ES256 EdDSA"`,
    },
  })
}

/** Authorization server metadata, overridable. */
export function asMetadata(overrides: Record<string, unknown> = {}): Route {
  return (_req, origin) => ({
    body: {
      issuer: origin,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: `${origin}/token`,
      registration_endpoint: `${origin}/register`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
      token_endpoint_auth_methods_supported: ['none'],
      ...overrides,
    },
  })
}
