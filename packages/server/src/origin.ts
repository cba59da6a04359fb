/**
 * Origin and Host validation against DNS rebinding.
 *
 * A web page on `evil.example` can re-point its own host name at 127.0.0.1 and then talk to a
 * local MCP server from the victim's browser; the browser sends the attacker's host name in
 * `Host` and the attacker's page in `Origin`. Checking both against what the server expects
 * refuses such requests before anything else runs.
 *
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#security-warning
 * @module
 */

import { isLoopbackHost } from '@callproof/core'

/** What requests may name in `Host` and `Origin`. */
export interface OriginPolicy {
  /**
   * Allowed `Host` header values (`host:port`, compared case-insensitively). `undefined` skips the
   * Host check (a server behind a proxy that rewrites Host).
   */
  readonly allowedHosts?: readonly string[]
  /**
   * Allowed `Origin` values (`scheme://host:port`). A request without `Origin` (not a browser) is
   * allowed; a request with any other `Origin`, including `null`, is refused.
   */
  readonly allowedOrigins: readonly string[]
}

/** The loopback names a browser on this machine may use for a local server, besides its own. */
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]']

/**
 * The default policy for a resource: its own origin may call it; when the resource lives on a
 * loopback host ({@link isLoopbackHost}), `Host` must name a loopback host with the same port:
 * the resource's own host name, `127.0.0.1`, `localhost` or `[::1]`.
 *
 * @example
 * ```ts
 * defaultOriginPolicy('http://127.0.0.1:3000/mcp')
 * // { allowedOrigins: ['http://127.0.0.1:3000', …], allowedHosts: ['127.0.0.1:3000', 'localhost:3000', '[::1]:3000'] }
 * ```
 */
export function defaultOriginPolicy(resource: string): OriginPolicy {
  const url = new URL(resource)
  if (!isLoopbackHost(url.hostname)) return { allowedOrigins: [url.origin] }
  const port = url.port === '' ? '' : `:${url.port}`
  // The resource's own name first: a server on 127.0.0.2 or app.localhost is reached by that name.
  const names = [...new Set([url.hostname, ...LOOPBACK_NAMES])]
  return {
    allowedOrigins: names.map((name) => `${url.protocol}//${name}${port}`),
    allowedHosts: names.map((name) => `${name}${port}`),
  }
}

/**
 * Checks a request's `Host` and `Origin`. Returns `undefined` when the request may proceed, else a
 * description of what was wrong (for the 403 answer and the audit event).
 *
 * @example
 * ```ts
 * const problem = checkOrigin(request, defaultOriginPolicy(resource))
 * if (problem !== undefined) return forbidden(problem)
 * ```
 */
export function checkOrigin(
  request: { readonly url: string; readonly headers: Pick<Headers, 'get'> },
  policy: OriginPolicy,
): string | undefined {
  const headers = request.headers
  if (policy.allowedHosts !== undefined) {
    // Runtimes that build the Request from the socket put Host into the URL; fall back to it.
    const host = headers.get('host') ?? new URL(request.url).host
    const allowed = policy.allowedHosts.map((h) => h.toLowerCase())
    if (!allowed.includes(host.toLowerCase())) {
      return `Host ${JSON.stringify(host)} is not one of ${allowed.join(', ')}`
    }
  }
  const origin = headers.get('origin')
  if (origin !== null) {
    const allowed = policy.allowedOrigins.map((o) => o.toLowerCase())
    if (!allowed.includes(origin.toLowerCase())) {
      return `Origin ${JSON.stringify(origin)} is not one of ${allowed.join(', ')}`
    }
  }
  return undefined
}
