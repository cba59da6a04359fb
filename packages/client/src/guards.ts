/**
 * SSRF guards for every URL the client fetches or opens because a server told it to (resource
 * metadata, authorization server metadata, registration, token and authorization endpoints).
 * A hostile MCP server could otherwise point the client at `http://169.254.169.254/` or at an
 * intranet admin page and read the answer through error messages.
 *
 * The guarded fetch resolves a host name once, when it connects, checks every address of that
 * answer and connects only to them, so DNS rebinding (a public answer for the check, an internal
 * one for the connection) has no second answer to slip in.
 *
 * @module
 */

import { lookup } from 'node:dns/promises'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { isLoopbackHost } from '@callproof/core'
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici'
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
   * Allows `http:` (and loopback addresses at all) for loopback hosts as core's `isLoopbackHost`
   * defines them: `localhost` and names under `.localhost`, `127.0.0.0/8` and `::1`. A loopback
   * name must resolve to loopback addresses only. Development only: a production client talks to
   * https servers on public addresses.
   */
  allowLoopbackHttp?: boolean
  /**
   * Allows private (RFC 1918, ULA), shared (100.64/10), link-local, IETF protocol assignment
   * (192.0.0/24) and benchmarking (198.18/15) addresses. Off by default. It never lifts loopback
   * (that is `allowLoopbackHttp`) nor the addresses no policy allows: "this host" (0.0.0.0/8),
   * documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), multicast, reserved,
   * and the IPv6 forms that embed or route to an arbitrary IPv4 address: IPv4-compatible
   * (`::/96`, e.g. `::7f00:1`), NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32).
   */
  allowPrivateNetworks?: boolean
  /**
   * Resolves a host name to addresses; defaults to the system resolver (all addresses). For
   * operators with their own DNS, and for tests. {@link guardedFetch} calls it once per new
   * connection and connects only to the addresses it answered, after checking every one of them.
   */
  resolve?: (hostname: string) => Promise<readonly string[]>
  /** Maximum redirects followed by {@link guardedFetch}; default 5. */
  maxRedirects?: number
  /**
   * The largest response body {@link guardedFetch} reads, in bytes; default
   * {@link DEFAULT_MAX_RESPONSE_BYTES} (1 MiB). Metadata, registration and token responses are a
   * few KiB; a larger one fails with `ERR_RESPONSE_TOO_LARGE` instead of filling memory.
   */
  maxResponseBytes?: number
  /**
   * How long one {@link guardedFetch} request may take, from sending it (redirects included) to
   * the last byte of its body, in milliseconds; default {@link DEFAULT_RESPONSE_TIMEOUT_MS}
   * (10 s). A server that sends its headers and then stalls fails with `ERR_RESPONSE_TIMEOUT`.
   */
  responseTimeoutMs?: number
}

/**
 * The default {@link UrlPolicy.maxResponseBytes}: 1 MiB.
 *
 * @example
 * ```ts
 * guardedFetch({ maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES / 4 })
 * ```
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

/**
 * The default {@link UrlPolicy.responseTimeoutMs}: 10 seconds.
 *
 * @example
 * ```ts
 * guardedFetch({ responseTimeoutMs: DEFAULT_RESPONSE_TIMEOUT_MS * 3 })
 * ```
 */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 10_000

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

// Addresses a server-supplied URL must not reach unless the operator allows private networks:
// private networks, link-local (cloud metadata services live at 169.254.169.254), CGNAT, the
// IETF protocol assignments, benchmarking, unique local and link-local IPv6.
const restricted = new BlockList()
for (const [net, prefix] of [
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
] as const) {
  restricted.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  restricted.addSubnet(net, prefix, 'ipv6')
}

// Addresses no policy allows, not even `allowPrivateNetworks`: an operator who lets the client
// reach an internal authorization server does not mean these. "This host" (`0.0.0.0` reaches the
// local machine, a way around the loopback rule), documentation (no real server lives there),
// multicast and reserved (never a destination), and the IPv6 forms that carry an arbitrary IPv4
// address the checks above would never see: IPv4-compatible (`::7f00:1` is 127.0.0.1), NAT64,
// 6to4 and Teredo.
const never = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['192.0.2.0', 24],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  never.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  // IPv4-compatible, and with it `::` (unspecified); `::1` is loopback and classified first.
  ['::', 96],
  ['64:ff9b::', 96],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['ff00::', 8],
] as const) {
  never.addSubnet(net, prefix, 'ipv6')
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

function classify(address: string): 'loopback' | 'never' | 'restricted' | 'public' {
  const { address: a, family } = normalizeAddress(address)
  if (loopback.check(a, family)) return 'loopback'
  if (never.check(a, family)) return 'never'
  if (restricted.check(a, family)) return 'restricted'
  return 'public'
}

async function defaultResolve(hostname: string): Promise<readonly string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true })
  return answers.map((a) => a.address)
}

/**
 * Refuses what is wrong with a URL before any DNS: not a URL, credentials, a scheme other than
 * `https:` (or `http:` on a loopback host in development), an address literal the policy forbids.
 */
function checkUrl(url: string | URL, policy: UrlPolicy): URL {
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
  if (parsed.protocol === 'http:') {
    if (!(isLoopbackHost(host) && policy.allowLoopbackHttp === true)) {
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
  // An address literal is connected to as written (no lookup happens), so it is checked here.
  if (isIP(host) !== 0) checkAddresses(parsed.hostname, [host], policy)
  return parsed
}

/**
 * Refuses a DNS answer unless every address in it is allowed: a name with one public and one
 * private address is refused, not trimmed, since its owner controls which one a client gets.
 */
function checkAddresses(hostname: string, addresses: readonly string[], policy: UrlPolicy): void {
  if (addresses.length === 0) {
    throw new CallproofClientError('ERR_UNSAFE_URL', `${hostname} does not resolve`)
  }
  for (const address of addresses) {
    if (isIP(address) === 0) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${hostname} resolved to ${JSON.stringify(address)}, which is not an IP address`,
      )
    }
    const kind = classify(address)
    if (kind === 'loopback' && policy.allowLoopbackHttp !== true) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${hostname} is a loopback address (${address}); allowed only in development`,
      )
    }
    if (kind === 'never') {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${hostname} is a special-purpose address (${address}) that no policy allows`,
      )
    }
    if (kind === 'restricted' && policy.allowPrivateNetworks !== true) {
      throw new CallproofClientError(
        'ERR_UNSAFE_URL',
        `${hostname} is a private or link-local address (${address})`,
      )
    }
  }
}

/** Resolves a host name once and returns the answer only if every address in it is allowed. */
async function resolveChecked(hostname: string, policy: UrlPolicy): Promise<readonly string[]> {
  const addresses = await (policy.resolve ?? defaultResolve)(hostname).catch(() => [])
  checkAddresses(hostname, addresses, policy)
  // A loopback name is loopback by its spelling, and http is allowed to it for that reason; but
  // Node asks the system resolver, which may send `.localhost` names to DNS: a network that
  // answers with its own address would receive the plaintext request.
  if (isLoopbackHost(hostname)) {
    for (const address of addresses) {
      if (classify(address) !== 'loopback') {
        throw new CallproofClientError(
          'ERR_UNSAFE_URL',
          `${hostname} is a loopback name but resolved to ${address}, which is not loopback`,
        )
      }
    }
  }
  return addresses
}

/**
 * Refuses a URL the client must not fetch: not `https:` (except `http:` on loopback when
 * `allowLoopbackHttp`), credentials in the URL, or a host that is or resolves to a loopback,
 * private or link-local address the policy does not allow. Every resolved address is checked, so
 * a name with one public and one private address is refused.
 *
 * This resolves the name for the check only: whoever then connects resolves it again, and a DNS
 * server that answers differently the second time (rebinding) is not caught here. Fetch through
 * {@link guardedFetch}, which checks the answer it connects with; use this function for URLs the
 * client does not connect to itself (an authorization URL handed to a browser).
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
  const parsed = checkUrl(url, policy)
  const host = unbracket(parsed.hostname)
  if (isIP(host) === 0) await resolveChecked(host, policy)
  return parsed
}

/**
 * A `net` lookup that answers with checked addresses only. Node calls it when it opens a socket to
 * a host name (never for an address literal), so the addresses checked are the ones connected to.
 */
function checkedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family
    resolveChecked(hostname, policy).then(
      (addresses) => {
        const answers = addresses
          .map((address) => ({ address, family: isIP(address) }))
          .filter((a) => !family || a.family === family)
        const first = answers[0]
        if (first === undefined) {
          callback(
            new CallproofClientError('ERR_UNSAFE_URL', `${hostname} has no IPv${family} address`),
            '',
          )
        } else if (options.all === true) {
          callback(null, answers)
        } else {
          callback(null, first.address, first.family)
        }
      },
      (err: Error) => callback(err, ''),
    )
  }
}

// One agent per policy object: a session's discovery and OAuth requests share its connection pool,
// and every pooled socket was opened to an address that policy checked.
const agents = new WeakMap<UrlPolicy, Agent>()

// The policy of callers that give none: one pool for all of them, not one per call.
const defaultPolicy: UrlPolicy = {}

function checkedAgent(policy: UrlPolicy): Agent {
  let agent = agents.get(policy)
  if (agent === undefined) {
    agent = new Agent({ connect: { lookup: checkedLookup(policy) } })
    agents.set(policy, agent)
  }
  return agent
}

/**
 * Closes the connection pool of `policy` (requests in flight finish first). A later guarded
 * request with the same policy opens a new pool, so closing never breaks another user of the
 * policy object; it only stops idle connections from lingering. A session calls this when it
 * closes.
 *
 * @example
 * ```ts
 * await closeGuardedConnections(session.urlPolicy)
 * ```
 */
export async function closeGuardedConnections(policy: UrlPolicy): Promise<void> {
  const agent = agents.get(policy)
  if (agent === undefined) return
  agents.delete(policy)
  await agent.close()
}

/** The guard's refusal inside a network error (`TypeError: fetch failed` with a `cause`). */
function refusalIn(err: unknown): unknown {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof CallproofClientError) return e
  }
  return err
}

/**
 * A `Request` input as `fetch(request, init)` reads it: its method, headers, body, signal and
 * redirect mode, each overridden by `init`. The body is read into memory, so that a same-origin
 * 307/308 can send it again.
 */
async function fromInput(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): Promise<{ url: string; init: RequestInit; redirect: RequestRedirect }> {
  if (typeof input === 'string' || input instanceof URL || typeof input.method !== 'string') {
    return { url: String(input), init: { ...init }, redirect: init?.redirect ?? 'follow' }
  }
  const method = init?.method ?? input.method
  const body =
    init?.body !== undefined
      ? init.body
      : input.body === null || method === 'GET' || method === 'HEAD'
        ? null
        : await input.arrayBuffer()
  return {
    url: input.url,
    init: {
      ...init,
      method,
      headers: new Headers(init?.headers ?? input.headers),
      body,
      signal: init?.signal ?? input.signal,
    },
    redirect: init?.redirect ?? input.redirect,
  }
}

// Headers that describe a body, dropped with it when a redirect turns the request into a GET
// (Fetch standard, HTTP-redirect fetch step 12).
const bodyHeaders = ['content-encoding', 'content-language', 'content-location', 'content-type']

/**
 * A `fetch` for every request a server's answer steered the client to. Before each request it
 * checks the URL (scheme, credentials, address literals); it connects through an undici `Agent`
 * whose lookup resolves the host name once, refuses the answer unless every address in it is
 * allowed (as {@link assertSafeUrl} does) and hands Node only those addresses, so the address
 * checked is the address connected to and DNS rebinding has no second answer to exploit. It
 * follows redirects by hand and checks each `Location` the same way (a public URL that redirects
 * to `169.254.169.254` is the classic SSRF bypass).
 *
 * Redirects (unless `redirect: 'manual'`, which returns them, as oauth4webapi asks for): a 303,
 * or a 301/302 answering a POST, is followed as a GET without the body, as the Fetch standard
 * does. A 307/308 keeps the method and the body, so when the request has a body and the
 * `Location` is on another origin it is refused with `ERR_UNSAFE_URL`: the body of a token or
 * registration request holds secrets (`client_secret`, `code_verifier`, a refresh token) that
 * only the origin they were sent to may read. Every redirect to another origin drops
 * `authorization`, `dpop` and `cookie`. `redirect: 'error'` rejects any redirect.
 *
 * A `Request` input counts as in `fetch(request, init)`: its method, headers, body, signal and
 * redirect mode, each overridden by `init`.
 *
 * Without `baseFetch` the requests go through undici's own `fetch` with that agent: one undici
 * version from request to socket on every Node release, whatever undici Node bundles. Responses
 * are undici's `Response` class (oauth4webapi accepts them; `instanceof` the global `Response` is
 * false).
 *
 * With `baseFetch` (a recording or counting wrapper) the URL is also resolved and checked before
 * the call, and `init.dispatcher` carries the agent: a wrapper that passes `init` on to `fetch`
 * connects only to checked addresses. One that drops `init.dispatcher` connects on its own, and
 * only the check before the call protects it (the rebinding window is open again).
 *
 * The agent (one per policy object) keeps connections open between requests; a session closes it
 * when it closes, and the next request with that policy opens a new one.
 *
 * @param policy - what is allowed
 * @param baseFetch - a fetch to send through (receives `init.dispatcher`); default undici's fetch
 * @throws {@link CallproofClientError} `ERR_UNSAFE_URL` (rejected promise)
 * @example
 * ```ts
 * const safeFetch = guardedFetch({ allowLoopbackHttp: true })
 * const res = await safeFetch('http://127.0.0.1:4000/.well-known/oauth-authorization-server')
 * ```
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 */
export function guardedFetch(
  policy: UrlPolicy = defaultPolicy,
  baseFetch?: typeof fetch,
): typeof fetch {
  const maxRedirects = policy.maxRedirects ?? 5
  const limits = responseLimits(policy)
  // The agent is looked up per request (a closed one is replaced), and comes last, so a caller's
  // `init.dispatcher` cannot route around the check.
  const send =
    baseFetch === undefined
      ? (url: string, init: RequestInit) =>
          undiciFetch(url, {
            ...(init as UndiciRequestInit),
            dispatcher: checkedAgent(policy),
          }) as Promise<unknown>
      : async (url: string, init: RequestInit) => {
          await assertSafeUrl(url, policy)
          return baseFetch(url, { ...init, dispatcher: checkedAgent(policy) } as RequestInit)
        }
  return async (input, init) => {
    const request = await fromInput(input, init)
    let url = request.url
    // One deadline for the whole exchange, redirects and body included: a server that trickles
    // or stalls cannot keep the client waiting longer than that.
    const deadline = new Deadline(limits.timeoutMs, request.url)
    const signal =
      request.init.signal == null
        ? deadline.signal
        : AbortSignal.any([request.init.signal, deadline.signal])
    let requestInit: RequestInit = { ...request.init, redirect: 'manual', signal }
    try {
      for (let hop = 0; ; hop++) {
        checkUrl(url, policy)
        const response = (await deadline.race(send(url, requestInit)).catch((err: unknown) => {
          throw deadline.error ?? refusalIn(err)
        })) as Response
        const location = response.headers.get('location')
        if (response.status < 300 || response.status > 399 || location === null) {
          return bounded(response, url, limits.maxBytes, deadline)
        }
        if (request.redirect === 'manual') return bounded(response, url, limits.maxBytes, deadline)
        await response.body?.cancel()
        if (request.redirect === 'error') {
          throw new TypeError(`${url} answered ${response.status}; redirect: 'error' follows none`)
        }
        if (hop >= maxRedirects) {
          throw new CallproofClientError('ERR_UNSAFE_URL', `too many redirects from ${url}`)
        }
        const next = new URL(location, url)
        const crossOrigin = next.origin !== new URL(url).origin
        const method = (requestInit.method ?? 'GET').toUpperCase()
        const asGet =
          (response.status === 303 && method !== 'HEAD') ||
          ((response.status === 301 || response.status === 302) && method === 'POST')
        // A redirect must never carry credentials to another origin, nor a body to a GET.
        const headers = new Headers(requestInit.headers)
        if (crossOrigin) {
          if (!asGet && requestInit.body != null) {
            throw new CallproofClientError(
              'ERR_UNSAFE_URL',
              `${url} answered ${response.status} to ${next.origin}: a request body is not sent again to another origin`,
            )
          }
          for (const name of ['authorization', 'dpop', 'cookie']) headers.delete(name)
        }
        if (asGet) {
          for (const name of bodyHeaders) headers.delete(name)
          requestInit = { ...requestInit, method: 'GET', body: null, headers }
        } else {
          requestInit = { ...requestInit, headers }
        }
        url = next.href
      }
    } catch (err) {
      deadline.clear()
      throw err
    }
  }
}

function responseLimits(policy: UrlPolicy): { maxBytes: number; timeoutMs: number } {
  const maxBytes = policy.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  const timeoutMs = policy.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new CallproofClientError(
      'ERR_INVALID_OPTIONS',
      `maxResponseBytes must be a positive integer (bytes), not ${String(maxBytes)}`,
    )
  }
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new CallproofClientError(
      'ERR_INVALID_OPTIONS',
      `responseTimeoutMs must be a positive integer (milliseconds), not ${String(timeoutMs)}`,
    )
  }
  return { maxBytes, timeoutMs }
}

/** The time limit of one guarded request: aborts it, and names the limit in its error. */
class Deadline {
  readonly #controller = new AbortController()
  readonly #timer: ReturnType<typeof setTimeout>
  error: CallproofClientError | undefined

  constructor(timeoutMs: number, url: string) {
    this.#timer = setTimeout(() => {
      this.error = new CallproofClientError(
        'ERR_RESPONSE_TIMEOUT',
        `${originOf(url)} did not answer in full within ${timeoutMs} ms (the client's responseTimeoutMs)`,
      )
      this.#controller.abort(this.error)
    }, timeoutMs)
    // A response nobody reads must not keep the process alive.
    this.#timer.unref?.()
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /**
   * `promise`, or this deadline's error once it passes: also when the fetch underneath (a
   * caller's `baseFetch`) does not honour the abort signal.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.#controller.signal
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error)
      signal.addEventListener('abort', onAbort, { once: true })
      promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort)
          resolve(value)
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort)
          reject(err as Error)
        },
      )
    })
  }

  clear(): void {
    clearTimeout(this.#timer)
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'the server'
  }
}

/**
 * `response` with a body that holds at most `maxBytes` and ends by the deadline: reading more,
 * or reading past the deadline, fails with a {@link CallproofClientError} that names the limit.
 * The bytes are counted as they arrive, so a huge body is never held in memory.
 */
function bounded(response: Response, url: string, maxBytes: number, deadline: Deadline): Response {
  const tooLarge = (size: string) =>
    new CallproofClientError(
      'ERR_RESPONSE_TOO_LARGE',
      `${originOf(url)} answered with ${size}; the client reads at most ${maxBytes} bytes (its maxResponseBytes)`,
    )
  const source = response.body
  if (source === null) {
    deadline.clear()
    return response
  }
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    deadline.clear()
    void source.cancel().catch(() => undefined)
    throw tooLarge(`a body of ${declared} bytes (Content-Length)`)
  }
  const reader = source.getReader()
  let size = 0
  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, error: unknown) => {
    deadline.clear()
    controller.error(error)
    void reader.cancel(error).catch(() => undefined)
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>
      try {
        chunk = await deadline.race(reader.read())
      } catch (err) {
        fail(controller, deadline.error ?? err)
        return
      }
      if (chunk.done) {
        deadline.clear()
        controller.close()
        return
      }
      size += chunk.value.byteLength
      if (size > maxBytes) {
        fail(controller, tooLarge(`more than ${maxBytes} bytes`))
        return
      }
      controller.enqueue(chunk.value)
    },
    cancel(reason) {
      deadline.clear()
      return reader.cancel(reason)
    },
  })
  const limited = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  })
  // What a constructed Response cannot take in its init, as the original had it.
  Object.defineProperty(limited, 'url', { value: response.url })
  Object.defineProperty(limited, 'redirected', { value: response.redirected })
  return limited
}

/**
 * The response-limit error (`ERR_RESPONSE_TOO_LARGE`, `ERR_RESPONSE_TIMEOUT`) in `err`'s chain
 * of causes, if there is one: oauth4webapi wraps the errors of the bodies it reads, and the
 * caller should see which limit was hit rather than "not JSON".
 *
 * @example
 * ```ts
 * throw responseLimitErrorIn(err) ?? new CallproofClientError('ERR_TOKEN_REQUEST_FAILED', '…')
 * ```
 */
export function responseLimitErrorIn(err: unknown): CallproofClientError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    if (
      e instanceof CallproofClientError &&
      (e.code === 'ERR_RESPONSE_TOO_LARGE' || e.code === 'ERR_RESPONSE_TIMEOUT')
    ) {
      return e
    }
  }
  return undefined
}
