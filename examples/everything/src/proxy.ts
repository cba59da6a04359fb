/**
 * A signing forward proxy on loopback: an MCP client without credentials (the MCP conformance
 * suite) talks plain Streamable HTTP to it, and every request leaves it with the caller's
 * DPoP-bound token and a fresh proof bound to that very message (`@callproof/client`'s fetch).
 *
 * It holds a token, so it is exactly what a DNS-rebinding page would like to reach: it listens on
 * 127.0.0.1 only, and refuses (403) any request whose `Host` is not a loopback name of its own
 * port, or whose `Origin`, when present, is not a loopback origin of it. A test helper until
 * `callproof bridge --listen` takes its place.
 *
 * @module
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'

/** Options of {@link startSigningProxy}. */
export interface SigningProxyOptions {
  /** The callproof MCP endpoint requests are forwarded to. */
  readonly target: string
  /** A fetch that adds the token and a per-request proof (`createCallproofFetch(target, …).fetch`). */
  readonly fetch: typeof globalThis.fetch
  /** Largest request body forwarded, in bytes (default 1 MiB). */
  readonly bodyLimit?: number
}

/** A running proxy. */
export interface SigningProxy {
  /** `http://127.0.0.1:<port>/mcp`: where the unauthenticated client connects. */
  readonly url: string
  close(): Promise<void>
}

/** Request headers of the Streamable HTTP transport that are passed on (nothing else is). */
const FORWARDED_REQUEST = [
  'accept',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  // MCP 2026-07-28 (SEP-2243): the standard headers the server checks against the body.
  'mcp-method',
  'mcp-name',
  'last-event-id',
  'origin',
]
/** MCP 2026-07-28's `Mcp-Param-<Name>` headers (tool arguments a tool declares as headers). */
const PARAM_HEADER = /^mcp-param-[a-z0-9-]+$/
/** Response headers that describe the connection, not the answer: never copied. */
const HOP_BY_HOP = new Set([
  'connection',
  'content-length',
  'content-encoding',
  'keep-alive',
  'transfer-encoding',
])

/**
 * Starts the proxy on 127.0.0.1 (a free port).
 *
 * @example
 * ```ts
 * const { fetch } = await createCallproofFetch(target, { interaction, development: true })
 * const proxy = await startSigningProxy({ target, fetch })
 * // point an MCP client without credentials at proxy.url
 * ```
 */
export async function startSigningProxy(options: SigningProxyOptions): Promise<SigningProxy> {
  const limit = options.bodyLimit ?? 1024 * 1024
  let port = 0
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // One line, no stack, nothing of the request echoed.
      process.stderr.write(
        `proxy: ${error instanceof Error ? error.name : 'error'} while forwarding\n`,
      )
      if (!res.headersSent) answer(res, 502, 'the callproof server could not be reached')
      else res.destroy()
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const loopback = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]
    if (!loopback.includes(req.headers.host ?? '')) {
      return answer(res, 403, 'Host is not a loopback name of this proxy')
    }
    const origin = req.headers.origin
    if (origin !== undefined && !loopback.some((host) => origin === `http://${host}`)) {
      return answer(res, 403, 'Origin is not a loopback origin of this proxy')
    }
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp')
      return answer(res, 404, 'not found')
    const method = req.method ?? 'GET'
    if (!['GET', 'POST', 'DELETE'].includes(method)) return answer(res, 405, 'method not allowed')

    const body = method === 'POST' ? await readBody(req, limit) : undefined
    if (body === null) return answer(res, 413, 'request body too large')
    const headers = new Headers()
    for (const name of FORWARDED_REQUEST) {
      const value = req.headers[name]
      // The suite's own Origin is a loopback origin of this proxy: the server sees none.
      if (typeof value === 'string' && name !== 'origin') headers.set(name, value)
    }
    for (const [name, value] of Object.entries(req.headers)) {
      if (PARAM_HEADER.test(name) && typeof value === 'string') headers.set(name, value)
    }
    const abort = new AbortController()
    res.once('close', () => abort.abort())
    let upstream: Response
    try {
      upstream = await options.fetch(options.target, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: abort.signal,
      })
    } catch (error) {
      // @callproof/client's ChallengeError: a refusal no step-up could change. The client gets
      // the server's status; the challenge's error code is passed on only if it is a plain token.
      const refusal = error as { name?: unknown; status?: unknown; error?: unknown }
      if (refusal.name !== 'ChallengeError' || typeof refusal.status !== 'number') throw error
      const code =
        typeof refusal.error === 'string' && /^[a-z_]{1,40}$/.test(refusal.error)
          ? refusal.error
          : 'refused'
      return answer(res, refusal.status, `the server refused this request (${code})`)
    }
    const out: Record<string, string> = {}
    upstream.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) out[name] = value
    })
    res.writeHead(upstream.status, out)
    if (upstream.body === null) return void res.end()
    Readable.fromWeb(upstream.body as WebReadableStream)
      .on('error', () => res.destroy())
      .pipe(res)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function answer(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }))
}

/** The body as text, or `null` when it is larger than `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) return null
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
