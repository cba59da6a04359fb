/**
 * Challenges answered by the client itself, each with a bounded number of authorizations per
 * request and a typed error when it gives up:
 *
 * - 401 without error or `invalid_token`: refresh, else authorize again;
 * - 403 `insufficient_scope`: authorize again for the granted scopes plus the challenged ones;
 * - 401 `insufficient_user_authentication`: authorize again with `acr_values` / `max_age`;
 * - 403 `insufficient_authorization_details`: approve this one call, retry it with the one-time
 *   token, keep the session token for everything else.
 *
 * (`use_dpop_nonce` is answered one layer down, in `sendWithProof`.)
 *
 * @module
 */

import { parseWwwAuthenticate } from '@callproof/core'
import { ChallengeError } from './errors.js'
import { DpopNonces, sendWithProof, type ProofSigner } from './fetch.js'
import type { CallproofSession } from './session.js'
import type { TokenSet } from './stores.js'

/**
 * A refusal, read from its status and `WWW-Authenticate`.
 *
 * @example
 * ```ts
 * const c = readChallenge(response)
 * if (c?.kind === 'insufficient_scope') console.log(c.scopes)
 * ```
 */
export type Challenge =
  | { kind: 'unauthorized'; resourceMetadata?: string; algs?: string; scope?: string }
  | { kind: 'invalid_token'; resourceMetadata?: string; algs?: string; scope?: string }
  | { kind: 'insufficient_scope'; scopes: string[] }
  | { kind: 'step_up'; acrValues?: string[]; maxAge?: number }
  | { kind: 'approval'; authorizationDetails?: unknown[] }
  | { kind: 'final'; error: string | undefined; description?: string }

/**
 * Reads a 401/403 response's challenge; `undefined` for other statuses.
 *
 * @example
 * ```ts
 * readChallenge(new Response(null, { status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' } }))
 * // { kind: 'invalid_token' }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9470#section-3
 */
export function readChallenge(response: Response): Challenge | undefined {
  if (response.status !== 401 && response.status !== 403) return undefined
  const challenges = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')
  const c =
    challenges.find((x) => x.params.error !== undefined) ??
    challenges.find((x) => /^(dpop|bearer)$/i.test(x.scheme)) ??
    challenges[0]
  const p = c?.params ?? {}
  const common = {
    ...(p.resource_metadata !== undefined && { resourceMetadata: p.resource_metadata }),
    ...(p.algs !== undefined && { algs: p.algs }),
    ...(p.scope !== undefined && { scope: p.scope }),
  }
  switch (p.error) {
    case undefined:
      return response.status === 401
        ? { kind: 'unauthorized', ...common }
        : { kind: 'final', error: undefined }
    case 'invalid_token':
      return { kind: 'invalid_token', ...common }
    case 'insufficient_scope':
      return { kind: 'insufficient_scope', scopes: (p.scope ?? '').split(' ').filter(Boolean) }
    case 'insufficient_user_authentication': {
      const maxAge = p.max_age !== undefined ? Number.parseInt(p.max_age, 10) : undefined
      return {
        kind: 'step_up',
        ...(p.acr_values !== undefined && { acrValues: p.acr_values.split(' ').filter(Boolean) }),
        ...(maxAge !== undefined && Number.isFinite(maxAge) && { maxAge }),
      }
    }
    case 'insufficient_authorization_details': {
      let details: unknown
      try {
        details = p.authorization_details ? decodeDetails(p.authorization_details) : undefined
      } catch {
        details = undefined
      }
      return { kind: 'approval', ...(Array.isArray(details) && { authorizationDetails: details }) }
    }
    default:
      return {
        kind: 'final',
        error: p.error,
        ...(p.error_description !== undefined && { description: p.error_description }),
      }
  }
}

/** Whether a refusal challenges with the `DPoP` scheme: the server then offers DPoP. */
function dpopChallenge(response: Response): boolean {
  const header = response.headers.get('www-authenticate') ?? ''
  return parseWwwAuthenticate(header).some((c) => /^dpop$/i.test(c.scheme))
}

/** The challenge parameter is base64url JSON (docs/protocol.md §11.1); plain JSON is read too. */
function decodeDetails(value: string): unknown {
  if (value.trimStart().startsWith('[')) return JSON.parse(value)
  return JSON.parse(Buffer.from(value, 'base64url').toString('utf8'))
}

/** Options of {@link createChallengeFetch}. */
export interface ChallengeFetchOptions {
  /** Authorizations (login, refresh, step-up, approval) per request before giving up; default 3. */
  maxAuthorizations?: number
  /** Nonce memory (default: a new one). */
  nonces?: DpopNonces
  /**
   * See {@link ProofSigner.relayRoutingHeaders}. Pass the request's `Mcp-Method` / `Mcp-Name` headers on unchecked, for a proxy that relays
   * another client's requests (the server checks them against the body and the proof, which
   * still binds the body). Default false: a request whose headers name another call than its
   * body is refused before it is signed (`ERR_BINDING_MISMATCH`).
   */
  relayRoutingHeaders?: boolean
}

function toolCallOf(body: string | undefined): { tool: string; arguments: unknown } | undefined {
  if (body === undefined) return undefined
  try {
    const message = JSON.parse(body) as {
      method?: unknown
      params?: { name?: unknown; arguments?: unknown }
    }
    if (message.method === 'tools/call' && typeof message.params?.name === 'string') {
      return { tool: message.params.name, arguments: message.params.arguments ?? {} }
    }
  } catch {
    // Not JSON: no tool call to approve.
  }
  return undefined
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])]
}

function sameChallenge(a: Challenge | undefined, b: Challenge): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b)
}

/**
 * The `fetch` `connect()` gives the SDK's `StreamableHTTPClientTransport`: every request signed
 * by {@link sendWithProof}, every challenge answered through `session`, with a bounded number of
 * authorizations per request. Gives up with a {@link ChallengeError}.
 *
 * @example
 * ```ts
 * const transport = new StreamableHTTPClientTransport(url, { fetch: createChallengeFetch(session) })
 * ```
 */
export function createChallengeFetch(
  session: CallproofSession,
  options: ChallengeFetchOptions = {},
): typeof fetch {
  const maxAuthorizations = options.maxAuthorizations ?? 3
  const signer: ProofSigner = {
    keyPair: session.options.keyPair,
    nonces: options.nonces ?? new DpopNonces(),
    ...(session.options.fetch && { fetch: session.options.fetch }),
    ...(options.relayRoutingHeaders === true && { relayRoutingHeaders: true }),
  }
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input)
    const body = typeof init.body === 'string' ? init.body : undefined
    let authorizations = 0
    let refreshed = false
    let last: Challenge | undefined
    for (;;) {
      const token = await session.token()
      const response = await sendWithProof(signer, url, init, token)
      const challenge = readChallenge(response)
      if (challenge === undefined) return response
      const giveUp = (code: 'ERR_CHALLENGE_RETRIES_EXHAUSTED' | 'ERR_ACCESS_DENIED', why: string) =>
        new ChallengeError(
          code,
          why,
          response.status,
          'error' in challenge ? challenge.error : challenge.kind,
        )
      if (challenge.kind === 'final') {
        throw new ChallengeError(
          'ERR_ACCESS_DENIED',
          `${new URL(url).origin} refused: ${challenge.error ?? `HTTP ${response.status}`}${challenge.description ? ` (${challenge.description})` : ''}`,
          response.status,
          challenge.error,
        )
      }
      // The same challenge right after we answered it: another authorization will not help.
      if (authorizations >= maxAuthorizations || sameChallenge(last, challenge)) {
        await response.body?.cancel()
        throw giveUp(
          'ERR_CHALLENGE_RETRIES_EXHAUSTED',
          `still refused (${challenge.kind}, HTTP ${response.status}) after ${authorizations} authorization(s)`,
        )
      }
      await response.body?.cancel()
      if (challenge.kind === 'unauthorized' || challenge.kind === 'invalid_token') {
        await session.discover(challenge.resourceMetadata, challenge.algs, dpopChallenge(response))
      }
      if (challenge.kind !== 'approval') {
        // A stored token (from an earlier run, or obtained by another request meanwhile) that is
        // not the one this request was refused with: retry with it before asking anybody for
        // anything. Not counted against the budget; it cannot loop, the next refusal of the same
        // token goes on to refresh or authorize.
        const current = await session.token()
        if (current !== undefined && current.accessToken !== token?.accessToken) continue
      }
      last = challenge
      authorizations++
      switch (challenge.kind) {
        case 'unauthorized':
        case 'invalid_token': {
          if (token !== undefined && !refreshed) {
            refreshed = true
            if (await session.refresh(token)) continue
          }
          // The server may have moved to another authorization server (SEP-2352): then the
          // next authorization discovers and registers there.
          if (token !== undefined && (await session.rediscover(challenge.resourceMetadata))) {
            await session.discover(
              challenge.resourceMetadata,
              challenge.algs,
              dpopChallenge(response),
            )
          }
          await session.authorize({
            reason: 'authorize',
            refused: token ?? null,
            ...(challenge.scope !== undefined && { challengeScope: challenge.scope }),
          })
          continue
        }
        case 'insufficient_scope': {
          await session.discover()
          const granted = token?.scopes ?? []
          await session.authorize({
            reason: 'scope',
            scopes: union(granted, challenge.scopes),
            refused: token ?? null,
          })
          continue
        }
        case 'step_up': {
          await session.discover()
          await session.authorize({
            reason: 'step_up',
            refused: token ?? null,
            ...(token && token.scopes.length > 0 && { scopes: token.scopes }),
            ...(challenge.acrValues && { acrValues: challenge.acrValues }),
            ...(challenge.maxAge !== undefined && { maxAge: challenge.maxAge }),
          })
          continue
        }
        case 'approval': {
          const call = toolCallOf(body)
          if (call === undefined) {
            throw giveUp(
              'ERR_ACCESS_DENIED',
              'approval demanded for a request that is not a tool call',
            )
          }
          const oneTime: TokenSet = await session.approve(call)
          // The one-time token serves this call only; the session token stays for everything else.
          const retried = await sendWithProof(signer, url, init, oneTime)
          const again = readChallenge(retried)
          if (again === undefined) return retried
          await retried.body?.cancel()
          throw new ChallengeError(
            'ERR_CHALLENGE_RETRIES_EXHAUSTED',
            `tool call ${call.tool} still refused after its approval (${again.kind})`,
            retried.status,
            again.kind,
          )
        }
      }
    }
  }
}
