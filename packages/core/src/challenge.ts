/**
 * The one place that turns a refusal into its HTTP answer: status, `WWW-Authenticate: DPoP …`
 * (parameter values quoted and escaped), extra headers (`DPoP-Nonce`, `Retry-After`) and a JSON
 * body; and the parser clients use to read challenges back.
 *
 * @module
 */

import { base64url } from 'jose'
import { CallproofError } from './errors.js'
import type { CallproofErrorCode } from './errors.js'
import {
  ApprovalRequiredError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  QuotaExceededError,
  UseNonceError,
} from './errors.js'

/**
 * What every challenge needs besides the error: the RFC 9728 metadata URL and the accepted proof
 * algorithms; `retryAfterSeconds` for 503 answers (default 1).
 *
 * @example
 * ```ts
 * const ctx: ChallengeContext = {
 *   resourceMetadata: 'https://drive.example/.well-known/oauth-protected-resource/mcp',
 *   algs: ['ES256', 'EdDSA', 'Ed25519'],
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 */
export interface ChallengeContext {
  resourceMetadata: string
  algs: readonly string[]
  retryAfterSeconds?: number
}

/**
 * The HTTP answer to a refused request.
 *
 * @example
 * ```ts
 * const { status, headers, body } = toHttpAnswer(err, ctx)
 * return c.json(body, status, headers)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 */
export interface HttpAnswer {
  status: number
  headers: Record<string, string>
  body: { error: string; error_description: string; code: CallproofErrorCode }
}

interface Row {
  status: number
  /** The `error` of the body and, when `challenge` is true, of `WWW-Authenticate`. */
  error: string
  /** Whether the answer carries a `WWW-Authenticate: DPoP` challenge. */
  challenge: boolean
  /** The `code` the body shows instead of the real one, which only the audit may see. */
  answerAs?: CallproofErrorCode
}

const ROWS: Record<CallproofErrorCode, Row> = {
  ERR_NO_CREDENTIALS: { status: 401, error: 'unauthorized', challenge: true },
  ERR_INVALID_TOKEN: { status: 401, error: 'invalid_token', challenge: true },
  ERR_BEARER_NOT_ALLOWED: { status: 401, error: 'invalid_token', challenge: true },
  ERR_INVALID_PROOF: { status: 401, error: 'invalid_dpop_proof', challenge: true },
  ERR_BINDING_MISMATCH: { status: 401, error: 'invalid_dpop_proof', challenge: true },
  ERR_BINDING_REQUIRED: { status: 401, error: 'invalid_dpop_proof', challenge: true },
  ERR_REPLAY: { status: 401, error: 'invalid_dpop_proof', challenge: true },
  ERR_USE_NONCE: { status: 401, error: 'use_dpop_nonce', challenge: true },
  ERR_INSUFFICIENT_SCOPE: { status: 403, error: 'insufficient_scope', challenge: true },
  ERR_INSUFFICIENT_USER_AUTHENTICATION: {
    status: 401,
    error: 'insufficient_user_authentication',
    challenge: true,
  },
  ERR_APPROVAL_REQUIRED: {
    status: 403,
    error: 'insufficient_authorization_details',
    challenge: true,
  },
  ERR_APPROVAL_USED: { status: 403, error: 'insufficient_authorization_details', challenge: true },
  // Answered as an unknown tool: any difference would tell a caller that `callers` excludes that
  // the tool exists, which tools/list hides from it (docs/protocol.md §9).
  ERR_CALLER_NOT_ALLOWED: {
    status: 403,
    error: 'access_denied',
    challenge: true,
    answerAs: 'ERR_TOOL_DENIED',
  },
  ERR_TOOL_DENIED: { status: 403, error: 'access_denied', challenge: true },
  ERR_SESSION_NOT_FOUND: { status: 404, error: 'not_found', challenge: false },
  ERR_SESSION_REQUIRED: { status: 400, error: 'invalid_request', challenge: false },
  ERR_BATCH_NOT_SUPPORTED: { status: 400, error: 'invalid_request', challenge: false },
  ERR_MALFORMED_BODY: { status: 400, error: 'invalid_request', challenge: false },
  ERR_BODY_TOO_LARGE: { status: 413, error: 'payload_too_large', challenge: false },
  ERR_NOT_ACCEPTABLE: { status: 406, error: 'not_acceptable', challenge: false },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, error: 'unsupported_media_type', challenge: false },
  ERR_UNSUPPORTED_PROTOCOL_VERSION: { status: 400, error: 'invalid_request', challenge: false },
  ERR_HEADER_MISMATCH: { status: 400, error: 'invalid_request', challenge: false },
  ERR_INVALID_CONTINUATION: { status: 400, error: 'invalid_request', challenge: false },
  ERR_ORIGIN_NOT_ALLOWED: { status: 403, error: 'forbidden', challenge: false },
  ERR_REPLAY_STORE_FULL: { status: 503, error: 'temporarily_unavailable', challenge: false },
  ERR_STORE_UNAVAILABLE: { status: 503, error: 'temporarily_unavailable', challenge: false },
  ERR_QUOTA_EXCEEDED: { status: 429, error: 'too_many_requests', challenge: false },
  ERR_INVALID_OPTIONS: { status: 500, error: 'server_error', challenge: false },
}

/**
 * A header-safe quoted-string (RFC 9110 §5.6.4): `"` and `\` escaped, and anything outside
 * printable ASCII replaced, so untrusted text can neither end the parameter nor break the header.
 */
function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/** RFC 6750 §3: error_description allows no `"` or `\` at all, so they are replaced, not escaped. */
function description(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, "'")
  return clean.length > 300 ? `${clean.slice(0, 300)}…`.replace(/[^\x20-\x7e]/g, '') : clean
}

/**
 * The HTTP answer for a refusal, as DESIGN.md's table says: 401/403/404/400/413/503 with a
 * `WWW-Authenticate: DPoP …` challenge where one applies (always with `resource_metadata` and
 * `algs`), `DPoP-Nonce` for ERR_USE_NONCE, `Retry-After` for 503, and a JSON body. An error that
 * is not a {@link CallproofError} is a programming error: 500 without details.
 *
 * ERR_CALLER_NOT_ALLOWED is answered exactly as ERR_TOOL_DENIED (its body `code` included), so a
 * caller cannot tell an unknown tool from one that `callers` excludes it from; the description is
 * the error's message, which `evaluatePolicy` makes the same for both. Audit `error.code`.
 *
 * For ERR_APPROVAL_REQUIRED / ERR_APPROVAL_USED the challenge's `authorization_details` parameter
 * is the base64url of the UTF-8 JSON array of authorization details to request (docs/protocol.md
 * §11.1); the array itself is in the body as `authorization_details`.
 *
 * @example
 * ```ts
 * try { call = await verifier.verify(req) } catch (err) {
 *   const answer = toHttpAnswer(err, ctx)
 *   return new Response(JSON.stringify(answer.body), { status: answer.status, headers: answer.headers })
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 * @see https://www.rfc-editor.org/rfc/rfc9470#section-3
 */
export function toHttpAnswer(error: unknown, ctx: ChallengeContext): HttpAnswer {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  }
  if (!(error instanceof CallproofError) || !(error.code in ROWS)) {
    return {
      status: 500,
      headers,
      body: {
        error: 'server_error',
        error_description: 'internal error',
        code: 'ERR_INVALID_OPTIONS',
      },
    }
  }
  const row = ROWS[error.code]
  const text = description(error.message)
  const body: HttpAnswer['body'] & Record<string, unknown> = {
    error: row.error,
    error_description: text,
    code: row.answerAs ?? error.code,
  }
  if (row.challenge) {
    const params: Array<[string, string]> = []
    if (error.code !== 'ERR_NO_CREDENTIALS') {
      params.push(['error', row.error], ['error_description', text])
    }
    if (error instanceof InsufficientScopeError) params.push(['scope', error.scopes.join(' ')])
    if (error instanceof InsufficientUserAuthenticationError) {
      if (error.acrValues) params.push(['acr_values', error.acrValues.join(' ')])
      if (error.maxAge !== undefined) params.push(['max_age', String(Math.floor(error.maxAge))])
    }
    if (error instanceof ApprovalRequiredError) {
      params.push([
        'authorization_details',
        base64url.encode(JSON.stringify(error.authorizationDetails)),
      ])
      body.authorization_details = error.authorizationDetails
    }
    params.push(['resource_metadata', ctx.resourceMetadata], ['algs', ctx.algs.join(' ')])
    headers['www-authenticate'] = `DPoP ${params.map(([k, v]) => `${k}=${quote(v)}`).join(', ')}`
  }
  if (error instanceof UseNonceError && error.nonce !== '') {
    headers['dpop-nonce'] = error.nonce.replace(/[^\x21-\x7e]/g, '')
  }
  if (row.status === 503)
    headers['retry-after'] = String(Math.max(0, Math.ceil(ctx.retryAfterSeconds ?? 1)))
  // A caller over its own quota learns when its oldest entry runs out (RFC 6585 §4).
  if (row.status === 429) {
    headers['retry-after'] = String(
      error instanceof QuotaExceededError ? error.retryAfterSeconds : 1,
    )
  }
  return { status: row.status, headers, body }
}

/**
 * {@link toHttpAnswer} as a Web `Response`.
 *
 * @example
 * ```ts
 * app.onError((err) => toResponse(err, ctx))
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 */
export function toResponse(error: unknown, ctx: ChallengeContext): Response {
  const answer = toHttpAnswer(error, ctx)
  return new Response(JSON.stringify(answer.body), {
    status: answer.status,
    headers: answer.headers,
  })
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/

/**
 * Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1) into its challenges. Parameter names are
 * lower-cased (they are case-insensitive); quoted values are unescaped; a token68 is returned as
 * the parameter `token68`. Lenient: it returns what it could read and never throws. Compare
 * schemes case-insensitively.
 *
 * @example
 * ```ts
 * const [c] = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '')
 * if (c?.params.error === 'insufficient_scope') requestScopes(c.params.scope!.split(' '))
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
 */
export function parseWwwAuthenticate(
  header: string,
): Array<{ scheme: string; params: Record<string, string> }> {
  const challenges: Array<{ scheme: string; params: Record<string, string> }> = []
  let rest = typeof header === 'string' ? header : ''
  const skip = (re: RegExp): void => {
    rest = rest.replace(re, '')
  }
  let current: { scheme: string; params: Record<string, string> } | undefined
  while (rest.length > 0) {
    skip(/^[\s,]+/)
    if (rest.length === 0) break
    // A parameter of the current challenge: token BWS "=" BWS ( token / quoted-string )
    const param = current && /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?=[^=\s,]|"|$)/.exec(rest)
    if (current && param) {
      rest = rest.slice(param[0].length)
      let value = ''
      if (rest.startsWith('"')) {
        let i = 1
        while (i < rest.length && rest[i] !== '"') {
          if (rest[i] === '\\' && i + 1 < rest.length) i++
          value += rest[i]
          i++
        }
        rest = rest.slice(i + 1)
      } else {
        const token = TOKEN.exec(rest)
        value = token ? token[0] : ''
        rest = rest.slice(value.length)
      }
      current.params[param[1]!.toLowerCase()] ??= value
      continue
    }
    const scheme = TOKEN.exec(rest)
    if (!scheme) {
      // Unparseable: skip to the next comma.
      const comma = rest.indexOf(',')
      rest = comma === -1 ? '' : rest.slice(comma)
      continue
    }
    current = { scheme: scheme[0], params: {} }
    challenges.push(current)
    rest = rest.slice(scheme[0].length)
    skip(/^[ \t]+/)
    const token68 = TOKEN68.exec(rest)
    if (token68 && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=[ \t]*[^=\s,]/.test(rest)) {
      const after = rest.slice(token68[0].length)
      if (/^[ \t]*(,|$)/.test(after)) {
        current.params.token68 = token68[0]
        rest = after
      }
    }
  }
  return challenges
}
