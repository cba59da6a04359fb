/**
 * SSRF guards for every URL the client fetches or opens because a server told it to (resource
 * metadata, authorization server metadata, registration, token and authorization endpoints).
 * A hostile MCP server could otherwise point the client at `http://169.254.169.254/` or at an
 * intranet admin page and read the answer through error messages.
 *
 * @module
 */

import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { CallproofClientError } from './errors.js'

/**
 * What a URL the client did not choose itself may point at.
 *
 * @example
 * ```ts
 * const policy: UrlPolicy = { allowLoopbackHttp: process.env.NODE_ENV === 'development' }
 * ```
 */
export interface UrlPolicy {
  /**
   * Allows `http:` (and loopback addresses at all) for `localhost`, `127.0.0.0/8` and `::1`.
   * Development only: a production client talks to https servers on public addresses.
   */
  allowLoopbackHttp?: boolean
  /** Allows private (RFC 1918, ULA), shared (100.64/10) and link-local addresses. Off by default. */
  allowPrivateNetworks?: boolean
  /** Resolves a host name to addresses; defaults to the system resolver (all addresses). */
  resolve?: (hostname: string) => Promise<readonly string[]>
  /** Maximum redirects followed by {@link guardedFetch}; default 5. */
  maxRedirects?: number
}

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

// Addresses a server-supplied URL must never reach by default: private networks, link-local
// (cloud metadata services live at 169.254.169.254), CGNAT, "this host", multicast, reserved.
const restricted = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  restricted.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  restricted.addSubnet(net, prefix, 'ipv6')
}

function unbracket(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
}

/** Reads an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it is. */
function normalizeAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped?.[1]) return { address: mapped[1], family: 'ipv4' }
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' }
}

/**
 * Whether a host name or address literal is loopback (`localhost`, `127.0.0.0/8`, `::1`).
 *
 * @example
 * ```ts
 * isLoopbackHost('[::1]') // true
 * ```
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = unbracket(hostname).toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  if (isIP(host) === 0) return false
  const { address, family } = normalizeAddress(host)
  return loopback.check(address, family)
}

function classify(address: string): 'loopback' | 'restricted' | 'public' {
  const { address: a, family } = normalizeAddress(address)
  if (loopback.check(a, family)) return 'loopback'
  if (restricted.check(a, family)) return 'restricted'
  return 'public'
}

async function defaultResolve(hostname: string): Promise<readonly string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true })
  return answers.map((a) => a.address)
}

/**
 * Refuses a URL the client must not fetch: not `https:` (except `http:` on loopback when
 * `allowLoopbackHttp`), credentials in the URL, or a host that is or resolves to a loopback,
 * private or link-local address the policy does not allow. Every resolved address is checked, so
 * a name with one public and one private address is refused.
 *
 * Limit: the check resolves the name, then `fetch` resolves it again; a DNS server that answers
 * differently within that instant (rebinding) can still slip through. Deployments that face
 * hostile DNS should also restrict egress at the network layer.
 *
 * @param url - the URL to check
 * @param policy - what is allowed
 * @throws {@link CallproofClientError} `ERR_UNSAFE_URL`
 * @example
 * ```ts
 * await assertSafeUrl('https://auth.example.com/token', {})
 * ```
 */
export async function assertSafeUrl(url: string | URL, policy: UrlPolicy = {}): Promise<URL> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (err) {
    throw new CallproofClientError('ERR_UNSAFE_URL', `${String(url)} is not a URL`, { cause: err })
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new CallproofClientError(
      'ERR_UNSAFE_URL',
      `${parsed.host}: URLs with credentials are refused`,
    )
  }
  const host = unbracket(parsed.hostname)
  const loopbackHost = isLoopbackHost(host)
  if (parsed.protocol === 'http:') {
    if (!(loopbackHost && policy.allowLoopbackHttp === true)) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${parsed.origin}: expected https (http is allowed only on loopback in development)`,
      )
    }
  } else if (parsed.protocol !== 'https:') {
    throw new CallproofClientError(
      'ERR_UNSAFE_URL',
      `${parsed.protocol} URL refused; expected https`,
    )
  }
  const addresses =
    isIP(host) !== 0 ? [host] : await (policy.resolve ?? defaultResolve)(host).catch(() => [])
  if (addresses.length === 0) {
    throw new CallproofClientError('ERR_UNSAFE_URL', `${parsed.hostname} does not resolve`)
  }
  for (const address of addresses) {
    const kind = classify(address)
    if (kind === 'loopback' && policy.allowLoopbackHttp !== true) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${parsed.hostname} is a loopback address (${address}); allowed only in development`,
      )
    }
    if (kind === 'restricted' && policy.allowPrivateNetworks !== true) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${parsed.hostname} is a private or link-local address (${address})`,
      )
    }
  }
  return parsed
}

/**
 * A `fetch` that checks the URL with {@link assertSafeUrl} before every request and follows
 * redirects by hand, checking each `Location` the same way (a public URL that redirects to
 * `169.254.169.254` is the classic SSRF bypass). Use it for every request a server's answer
 * steered the client to.
 *
 * @param policy - what is allowed
 * @param baseFetch - the underlying fetch (default: global `fetch`)
 * @example
 * ```ts
 * const safeFetch = guardedFetch({ allowLoopbackHttp: true })
 * const res = await safeFetch('http://127.0.0.1:4000/.well-known/oauth-authorization-server')
 * ```
 */
export function guardedFetch(
  policy: UrlPolicy = {},
  baseFetch: typeof fetch = fetch,
): typeof fetch {
  const maxRedirects = policy.maxRedirects ?? 5
  return async (input, init) => {
    let url = input instanceof Request ? input.url : String(input)
    let requestInit: RequestInit = { ...init, redirect: 'manual' }
    for (let hop = 0; ; hop++) {
      await assertSafeUrl(url, policy)
      const response = await baseFetch(url, requestInit)
      const location = response.headers.get('location')
      if (response.status < 300 || response.status > 399 || location === null) return response
      if (init?.redirect === 'manual') return response
      if (hop >= maxRedirects) {
        throw new CallproofClientError('ERR_UNSAFE_URL', `too many redirects from ${url}`)
      }
      await response.body?.cancel()
      const next = new URL(location, url)
      // A redirect must never carry credentials to another origin, nor a body to a GET.
      const headers = new Headers(requestInit.headers)
      if (next.origin !== new URL(url).origin) {
        headers.delete('authorization')
        headers.delete('dpop')
      }
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && requestInit.method === 'POST')
      ) {
        requestInit = { ...requestInit, method: 'GET', body: null, headers }
      } else {
        requestInit = { ...requestInit, headers }
      }
      url = next.href
    }
  }
}
