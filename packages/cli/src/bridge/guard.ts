/**
 * Who may use the bridge's loopback HTTP endpoint (`--listen`). A port on 127.0.0.1 is reachable
 * by every process of every user on the machine, and by web pages through DNS rebinding: a bridge
 * that answered them all would be exactly the standing authorization callproof removes (a process
 * that holds a key and signs whatever it is sent). So the endpoint's path holds a secret made for
 * this launch only, and a request is served only when
 *
 * - its `Host` is the bridge's own loopback address (a rebound DNS name is not),
 * - its `Origin`, when a browser sent one, is a loopback origin,
 * - and its path is `/<secret>/mcp`, compared in constant time.
 *
 * Everything else gets a bare status without a word about why.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { isLoopbackHost } from '@callproof/core'

/** Bytes of randomness in the per-launch secret: 256 bits, far beyond guessing over a socket. */
export const SECRET_BYTES = 32

/** A new per-launch secret, base64url (URL-path safe). */
export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

/** The path of the endpoint for `secret`. */
export function endpointPath(secret: string): string {
  return `/${secret}/mcp`
}

/** The verdict on one request: serve it, or answer with this bare status. */
export type Admission = { readonly ok: true } | { readonly ok: false; readonly status: 403 | 404 }

/** What of a request the guard looks at. */
export interface GuardedRequest {
  readonly url: string | undefined
  readonly host: string | undefined
  readonly origin: string | undefined
}

/** `a === b` in time that does not depend on where they differ (hashes make the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(a), digest(b))
}

/** The host names the bridge answers to on `port`: its address and `localhost`, nothing else. */
function allowedHost(host: string, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}`
}

/** A browser's `Origin` on a loopback host (any port: a local web client), or `null` for none. */
function allowedOrigin(origin: string): boolean {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname)
}

/**
 * Decides whether to serve a request to the loopback endpoint listening on `port`.
 *
 * @example
 * ```ts
 * admit({ url: `/${secret}/mcp`, host: '127.0.0.1:8808', origin: undefined }, secret, 8808) // { ok: true }
 * ```
 */
export function admit(request: GuardedRequest, secret: string, port: number): Admission {
  // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
  // Host: evil.example, and a browser sends its Origin; both are refused before the path is read.
  if (request.host === undefined || !allowedHost(request.host.toLowerCase(), port)) {
    return { ok: false, status: 403 }
  }
  if (request.origin !== undefined && !allowedOrigin(request.origin)) {
    return { ok: false, status: 403 }
  }
  const path = (request.url ?? '').split('?', 1)[0] ?? ''
  if (!sameSecret(path, endpointPath(secret))) return { ok: false, status: 404 }
  return { ok: true }
}
