/**
 * The callers a scan acts as: a caller holding an access token given on the command line
 * (`--token`), or a callproof client that obtains its own credentials (`--login`), with a DPoP key
 * of its own, so that checks needing a proof of possession can run against DPoP servers.
 */
import { execFile } from 'node:child_process'
import { createCallproofFetch, systemBrowserInteraction } from '@callproof/client'
import type { Interaction } from '@callproof/client'
import { loadDevAuthServer } from '../stack.js'
import { AGENT_METADATA } from '../trace.js'
import { boundedFetch, describeRequest, readAnswer, sendRaw } from './http.js'
import type { Answer, WireLog, WireRequest } from './http.js'
import { safeText } from '../terminal.js'

/** One caller of the scan: caller A, and optionally caller B. */
export interface ScanCaller {
  readonly name: 'A' | 'B'
  /** How it got its credentials, for the report (`--token`, `--login as alice`). */
  readonly how: string
  /** Whether it signs a DPoP proof for each request. */
  readonly proofs: boolean
  /**
   * Sends one MCP message with this caller's credentials and the given extra headers (session id,
   * protocol version), and returns the answer with the request as it went on the wire.
   */
  send(
    message: object,
    headers: Record<string, string>,
  ): Promise<{ answer: Answer; wire: WireRequest }>
  /**
   * The request this caller would send for `message`, signed, without sending it: a proof that
   * was never used, so that a server's replay cache cannot be what refuses its altered copy.
   * Only for callers with proofs.
   */
  sign?(message: object, headers: Record<string, string>): Promise<WireRequest>
  /** The access token, once known (given, or seen on the wire). */
  token(): string | undefined
  close(): Promise<void>
}

/** The headers every MCP POST carries. */
export function mcpHeaders(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) headers[k] = v
  return headers
}

/** A caller that holds an access token and nothing else: it sends it as `Bearer`. */
export function tokenCaller(
  name: 'A' | 'B',
  url: string,
  token: string,
  log?: WireLog,
): ScanCaller {
  return {
    name,
    how: '--token',
    proofs: false,
    send: async (message, headers) => {
      const wire: WireRequest = {
        method: 'POST',
        url,
        headers: mcpHeaders({ ...headers, authorization: `Bearer ${token}` }),
        body: JSON.stringify(message),
      }
      return { answer: await sendRaw(wire, log), wire }
    },
    token: () => token,
    close: async () => {},
  }
}

/** Options of {@link loginCaller}. */
export interface LoginCallerOptions {
  readonly name: 'A' | 'B'
  readonly url: string
  /** A development test user, signed in headlessly on the development authorization server. */
  readonly user?: string
  /** Loopback target: http allowed, as `callproof call` does. */
  readonly development: boolean
  readonly log?: WireLog
  /** Where the system-browser sign-in prints its URL. */
  readonly say: (line: string) => void
  /**
   * Opens the authorization URL when there is no `user` (default: the program in `$BROWSER`,
   * else the system browser).
   */
  readonly openUrl?: (url: string) => Promise<void>
  /** `$BROWSER`, when set. */
  readonly browser?: string
}

/** Opens `url` with the program named in `$BROWSER`, never through a shell. */
function openWith(command: string): (url: string) => Promise<void> {
  return (url) =>
    new Promise((resolve, reject) => {
      const child = execFile(command, [url], { shell: false }, (error) => {
        if (error !== null) reject(error)
      })
      // The browser may keep running; it only has to have started.
      child.once('spawn', () => resolve())
    })
}

/**
 * A callproof client as a caller: its own non-extractable key, discovery, registration and
 * sign-in as the server asks for them, a fresh proof bound to every request. Every request it
 * makes (to the target and to the authorization server) is bounded and never follows a redirect.
 */
export async function loginCaller(options: LoginCallerOptions): Promise<ScanCaller> {
  const { url, log } = options
  let interaction: Interaction
  let closeInteraction = async () => {}
  if (options.user !== undefined) {
    const { devInteraction } = await loadDevAuthServer()
    interaction = devInteraction({ user: options.user })
  } else {
    const open =
      options.openUrl ??
      (options.browser === undefined || options.browser === ''
        ? undefined
        : openWith(options.browser))
    const browser = systemBrowserInteraction({
      allowLoopbackHttp: options.development,
      ...(open === undefined ? {} : { open }),
      onUrl: (authorizationUrl) =>
        options.say(
          `  caller ${options.name}: open this URL to sign in:\n  ${safeText(authorizationUrl.href, { max: 4000 })}`,
        ),
    })
    interaction = browser
    closeInteraction = () => browser.close()
  }

  let last: WireRequest | undefined
  let accessToken: string | undefined
  let hold: ((wire: WireRequest) => void) | undefined
  const bounded = boundedFetch()
  const inner: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const isCall = request.method === 'POST' && request.url === url
    if (!isCall) {
      log?.(
        `→ ${request.method} ${safeText(request.url, { max: 160 })} (caller ${options.name}'s client: discovery or sign-in)`,
      )
      return bounded(input, init)
    }
    const headers: Record<string, string> = {}
    new Headers(init?.headers).forEach((value, key) => (headers[key] = value))
    const body = typeof init?.body === 'string' ? init.body : undefined
    const wire: WireRequest = {
      method: 'POST',
      url,
      headers,
      ...(body === undefined ? {} : { body }),
    }
    last = wire
    const authorization = headers.authorization
    if (authorization !== undefined) accessToken = authorization.replace(/^\S+\s+/, '')
    if (hold !== undefined) {
      // Signed, not sent: the proof stays unused (see ScanCaller.sign).
      hold(wire)
      hold = undefined
      return new Response(null, { status: 204 })
    }
    log?.(`→ ${describeRequest(wire)}`)
    const response = await bounded(input, init)
    // Every answer, also the challenges the client answers by itself (sign-in, nonce).
    const challenge = response.headers.get('www-authenticate')
    log?.(
      `← ${response.status}${challenge === null ? '' : ` WWW-Authenticate: ${safeText(challenge, { max: 160 })}`}`,
    )
    return response
  }
  const { fetch: signed, session } = await createCallproofFetch(url, {
    interaction,
    fetch: inner,
    development: options.development,
    clientInfo: { name: 'callproof-scan', version: '0.1.0' },
    registration: { clientMetadata: AGENT_METADATA('callproof scan') },
    // A scan signs in to measure the server, whatever its metadata says about DPoP.
    requireDpopOffer: false,
  })
  const post = (message: object, headers: Record<string, string>) =>
    signed(url, { method: 'POST', headers: mcpHeaders(headers), body: JSON.stringify(message) })

  return {
    name: options.name,
    how: options.user === undefined ? '--login' : `--login as ${options.user}`,
    proofs: true,
    send: async (message, headers) => {
      last = undefined
      const answer = await readAnswer(await post(message, headers))
      if (last === undefined) throw new Error(`caller ${options.name}'s client sent nothing`)
      return { answer, wire: last }
    },
    sign: async (message, headers) => {
      let signed: WireRequest | undefined
      hold = (wire) => (signed = wire)
      try {
        const response = await post(message, headers)
        await response.body?.cancel()
      } finally {
        // Never left armed: the next request of this caller must really be sent.
        hold = undefined
      }
      if (signed === undefined) throw new Error(`caller ${options.name}'s client signed nothing`)
      return signed
    },
    token: () => accessToken,
    close: async () => {
      await session.close()
      await closeInteraction()
    },
  }
}
