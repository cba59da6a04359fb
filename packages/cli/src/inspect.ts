/**
 * `callproof inspect <jwt>`: decodes a DPoP proof or an access token, explains every claim in plain
 * words, and verifies the signature where it can (a proof against its own embedded key; a token
 * against its issuer's JWKS).
 */
import {
  compactVerify,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
} from 'jose'
import type { JWK, JWTPayload, ProtectedHeaderParameters } from 'jose'
import {
  PROOF_ALGORITHMS,
  TOKEN_ALGORITHMS,
  accessTokenHash,
  bindingFor,
  bindingsEqual,
  jwkThumbprint,
  verifyProof,
  isLoopbackHost,
} from '@callproof/core'
import type { McpBinding } from '@callproof/core'
import { parse } from './args.js'
import { CliError, UsageError, relativeTime, style } from './io.js'
import type { Io } from './io.js'
import { safeJson, safeText } from './terminal.js'

/** One explained header parameter or claim. */
export interface ExplainedField {
  readonly name: string
  readonly value: unknown
  /** What the field means and what it says here, in plain words. */
  readonly meaning: string
  /** `warn`: unusual or about to fail; `bad`: a callproof server would refuse this. */
  readonly status?: 'ok' | 'warn' | 'bad'
}

/** The outcome of one check inspect could run (signature, `ath`, binding…). */
export interface InspectCheck {
  readonly check: string
  readonly ok: boolean
  readonly detail: string
}

/** What `inspect` found: the kind of JWT, its explained fields and the checks it ran. */
export interface Inspection {
  readonly kind: 'dpop-proof' | 'access-token' | 'jwt'
  readonly header: readonly ExplainedField[]
  readonly claims: readonly ExplainedField[]
  readonly checks: readonly InspectCheck[]
}

/** Options of {@link inspectJwt}. */
export interface InspectOptions {
  /**
   * Issuer whose JWKS verifies an access token. Without it nothing is fetched and the signature
   * is reported as not verified: the token's own `iss` is never trusted to name its verifier.
   */
  readonly issuer?: string
  /** For a proof: the access token it was sent with (checks `ath` and `cnf.jkt`). */
  readonly accessToken?: string
  /** For a proof: the JSON-RPC body it was sent with (checks the `mcp` call binding). */
  readonly body?: unknown
  /** Seconds a proof's `iat` may lie in the past (the server's default window is 60). */
  readonly proofMaxAgeSeconds?: number
  readonly now?: number
  readonly fetch?: typeof fetch
}

const ACR_MEANING: Record<string, string> = {
  'urn:callproof:acr:pwd': 'signed in with a password',
  'urn:callproof:acr:mfa': 'signed in with a password and a second factor (MFA)',
}

const ALG_MEANING: Record<string, string> = {
  ES256: 'ECDSA on P-256 with SHA-256',
  ES384: 'ECDSA on P-384 with SHA-384',
  ES512: 'ECDSA on P-521 with SHA-512',
  EdDSA: 'Ed25519 (EdDSA)',
  Ed25519: 'Ed25519 (fully specified name, RFC 9864)',
  RS256: 'RSA PKCS#1 v1.5 with SHA-256',
  PS256: 'RSA-PSS with SHA-256',
}

/*
 * The JWK members that hold private key material (RFC 7517/7518: EC/OKP/RSA `d`, RSA `p` `q` `dp`
 * `dq` `qi` `oth`, symmetric `k`, and `priv` of the AKP keys). Core's verifyProof refuses a proof
 * whose jwk holds any of them, and it decides the signature check below; core does not export its
 * list, so this complete copy only words the explanation of the header.
 */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const

/** A value from the JWT inside an explanation: escaped and short (the whole value is shown above). */
const quote = (value: unknown) => safeText(value, { max: 80 })

/** An error's message, escaped and bounded (jose and servers put received values into them). */
const messageOf = (error: unknown) =>
  safeText(error instanceof Error ? error.message : error, { max: 200 })

/** Accepts a bare JWT, `DPoP <jwt>`, `Bearer <jwt>` or a pasted `Authorization:`/`DPoP:` header line. */
export function extractJwt(input: string): string {
  const trimmed = input.trim()
  const match = /([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/.exec(trimmed)
  if (match?.[1] === undefined) {
    throw new CliError('that is not a JWT (expected three base64url parts separated by dots)', {
      hint: 'paste the token or proof itself, e.g. `callproof inspect eyJhbGciOi…`',
    })
  }
  return match[1]
}

function isLoopback(url: string): boolean {
  return URL.canParse(url) && isLoopbackHost(new URL(url).hostname)
}

/** https, or http on loopback: where an issuer's metadata and keys may be fetched from. */
function isFetchable(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.href))
}

function describeJwk(jwk: JWK): string {
  if (jwk.kty === 'EC') return `EC ${quote(jwk.crv ?? '?')} public key`
  if (jwk.kty === 'OKP') return `${quote(jwk.crv ?? 'OKP')} public key`
  if (jwk.kty === 'RSA') return 'RSA public key'
  return `${quote(jwk.kty ?? 'unknown')} key`
}

function time(seconds: unknown, now: number): string {
  if (typeof seconds !== 'number') return 'not a number'
  return `${new Date(seconds * 1000).toISOString()} (${relativeTime(seconds, now)})`
}

function explainHeader(header: ProtectedHeaderParameters, kind: Inspection['kind']) {
  const fields: ExplainedField[] = []
  for (const [name, value] of Object.entries(header)) {
    switch (name) {
      case 'typ':
        fields.push({
          name,
          value,
          meaning:
            value === 'dpop+jwt'
              ? 'a DPoP proof (RFC 9449 §4.2): the client signs one of these for every request'
              : value === 'at+jwt' || value === 'application/at+jwt'
                ? 'a JWT access token (RFC 9068): issued by the authorization server'
                : `not a type callproof expects (dpop+jwt for proofs, at+jwt for access tokens)`,
          status: value === 'dpop+jwt' || value === 'at+jwt' ? 'ok' : 'warn',
        })
        break
      case 'alg': {
        const algName = String(value)
        // Core's own allowlists: what a callproof server accepts, not a copy that can drift.
        const allowed: readonly string[] =
          kind === 'dpop-proof' ? PROOF_ALGORITHMS : kind === 'access-token' ? TOKEN_ALGORITHMS : []
        const bad =
          algName === 'none' ||
          algName.startsWith('HS') ||
          (allowed.length > 0 && !allowed.includes(algName))
        fields.push({
          name,
          value,
          meaning: `${(Object.hasOwn(ALG_MEANING, algName) ? ALG_MEANING[algName] : undefined) ?? 'signature algorithm'}${
            bad
              ? kind === 'jwt'
                ? ' — not asymmetric: refused'
                : ` — not in callproof’s ${kind === 'dpop-proof' ? 'proof' : 'token'} allowlist (${allowed.join(', ')}): refused`
              : ''
          }`,
          status: bad ? 'bad' : 'ok',
        })
        break
      }
      case 'jwk':
        // filled in by the caller, which knows the thumbprint
        break
      case 'kid':
        fields.push({
          name,
          value,
          meaning: 'which of the issuer’s published keys signed this (looked up in its JWKS)',
        })
        break
      default:
        fields.push({ name, value, meaning: 'header parameter callproof does not use' })
    }
  }
  return fields
}

/**
 * Decodes and explains a DPoP proof or access token, and runs every check it can without the
 * server's state: signature, `ath` and key binding (with `accessToken`), call binding (with `body`).
 *
 * @example
 * ```ts
 * const inspection = await inspectJwt(proof, { accessToken, body })
 * for (const c of inspection.checks) console.log(c.check, c.ok)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2 (DPoP proof)
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2 (JWT access token claims)
 */
export async function inspectJwt(jwt: string, options: InspectOptions = {}): Promise<Inspection> {
  const now = options.now ?? Date.now()
  let header: ProtectedHeaderParameters
  let payload: JWTPayload
  try {
    header = decodeProtectedHeader(jwt)
    payload = decodeJwt(jwt)
  } catch (error) {
    throw new CliError(
      `cannot decode the JWT: ${error instanceof Error ? error.message : String(error)}`,
      { hint: 'check that the whole token was copied (three parts separated by dots)' },
    )
  }
  const kind: Inspection['kind'] =
    header.typ === 'dpop+jwt' || (header.jwk !== undefined && 'htm' in payload)
      ? 'dpop-proof'
      : header.typ === 'at+jwt' || header.typ === 'application/at+jwt' || 'cnf' in payload
        ? 'access-token'
        : 'jwt'
  const headerFields = explainHeader(header, kind)
  const checks: InspectCheck[] = []
  const claims: ExplainedField[] = []

  if (kind === 'dpop-proof') {
    await explainProof(jwt, header, payload, options, now, headerFields, claims, checks)
  } else {
    await explainToken(jwt, header, payload, options, now, claims, checks)
  }
  return {
    kind,
    header: sorted(headerFields, HEADER_ORDER),
    claims: sorted(claims, CLAIM_ORDER),
    checks,
  }
}

const HEADER_ORDER = ['typ', 'alg', 'jwk', 'kid']
// Who, for what, with which strength, then when: the order a reader asks the questions in.
const CLAIM_ORDER = [
  'iss',
  'sub',
  'aud',
  'client_id',
  'scope',
  'cnf',
  'acr',
  'auth_time',
  'authorization_details',
  'htm',
  'htu',
  'mcp',
  'ath',
  'nonce',
  'iat',
  'nbf',
  'exp',
  'jti',
]

function sorted(fields: readonly ExplainedField[], order: readonly string[]): ExplainedField[] {
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length)
  return [...fields].sort((a, b) => rank(a.name) - rank(b.name))
}

async function explainProof(
  jwt: string,
  header: ProtectedHeaderParameters,
  payload: JWTPayload,
  options: InspectOptions,
  now: number,
  headerFields: ExplainedField[],
  claims: ExplainedField[],
  checks: InspectCheck[],
) {
  const maxAge = options.proofMaxAgeSeconds ?? 60
  let jkt: string | undefined
  if (header.jwk !== undefined) {
    const jwk = header.jwk
    const hasPrivate = PRIVATE_JWK_MEMBERS.some((m) => m in jwk)
    jkt = await jwkThumbprint(jwk).catch(() => undefined)
    headerFields.push({
      name: 'jwk',
      value: jwk,
      meaning: hasPrivate
        ? 'contains PRIVATE key material: a proof must carry the public key only — refused'
        : jkt === undefined
          ? `${describeJwk(jwk)} that has no RFC 7638 thumbprint (not a valid public key) — refused`
          : `${describeJwk(jwk)} of the client; thumbprint (RFC 7638) ${jkt} — the access token must be bound to this key (cnf.jkt)`,
      status: hasPrivate ? 'bad' : 'ok',
    })
    checks.push(await checkProof(jwt, payload))
  } else {
    headerFields.push({
      name: 'jwk',
      value: undefined,
      meaning: 'missing: a DPoP proof must carry its public key — refused',
      status: 'bad',
    })
  }

  for (const [name, value] of Object.entries(payload)) {
    switch (name) {
      case 'jti':
        claims.push({
          name,
          value,
          meaning:
            'unique id of this proof: the server records (key thumbprint, jti) and refuses a second use — a captured proof cannot be replayed',
        })
        break
      case 'htm':
        claims.push({ name, value, meaning: `good only for HTTP ${quote(value)} requests` })
        break
      case 'htu': {
        const hasExtra = typeof value === 'string' && /[?#]/.test(value)
        claims.push({
          name,
          value,
          meaning: hasExtra
            ? 'carries a query or fragment: callproof refuses such an htu'
            : 'good only for this URL (the MCP endpoint, compared without query or fragment)',
          status: hasExtra ? 'bad' : 'ok',
        })
        break
      }
      case 'iat': {
        const age = typeof value === 'number' ? now / 1000 - value : NaN
        const fresh = age <= maxAge && age >= -5
        claims.push({
          name,
          value,
          meaning: `minted ${time(value, now)}; a server accepts proofs up to ${maxAge} s old${
            fresh ? '' : ' — outside that window now: refused'
          }`,
          status: fresh ? 'ok' : 'warn',
        })
        break
      }
      case 'ath':
        claims.push({
          name,
          value,
          meaning:
            'SHA-256 of the access token this proof goes with: the proof cannot be moved to another token',
        })
        break
      case 'nonce':
        claims.push({
          name,
          value,
          meaning:
            'a value the server handed out (DPoP-Nonce); proves the proof was made recently, after the server asked',
        })
        break
      case 'mcp':
        claims.push({ name, value, meaning: explainBinding(value) })
        break
      default:
        claims.push({ name, value, meaning: 'claim callproof does not use (allowed by RFC 9449)' })
    }
  }
  for (const required of ['jti', 'htm', 'htu', 'iat']) {
    if (!(required in payload)) {
      claims.push({
        name: required,
        value: undefined,
        meaning: 'missing: every DPoP proof needs it — refused',
        status: 'bad',
      })
    }
  }
  if (!('ath' in payload)) {
    claims.push({
      name: 'ath',
      value: undefined,
      meaning: 'missing: a proof sent with an access token must carry its hash — refused',
      status: 'bad',
    })
  }

  if (options.accessToken !== undefined) {
    const expected = await accessTokenHash(options.accessToken)
    checks.push({
      check: 'ath',
      ok: payload.ath === expected,
      detail:
        payload.ath === expected
          ? 'matches the access token given with --token'
          : `does not match the access token given with --token (its hash is ${expected})`,
    })
    try {
      const cnf = decodeJwt(options.accessToken).cnf as { jkt?: unknown } | undefined
      const bound = cnf?.jkt !== undefined && cnf.jkt === jkt
      checks.push({
        check: 'key binding',
        ok: bound,
        detail: bound
          ? 'the token’s cnf.jkt is this proof’s key: the proof comes from the token’s holder'
          : `the token is bound to ${quote(cnf?.jkt ?? 'no key')}, the proof is signed by ${jkt ?? 'no key'}: someone else’s token — refused`,
      })
    } catch {
      checks.push({ check: 'key binding', ok: false, detail: '--token is not a JWT' })
    }
  }

  if (options.body !== undefined) {
    checks.push(await checkBinding(payload.mcp, options.body))
  }
}

/**
 * Core's own verdict on the proof (verifyProof: typ, alg allowlist, a public jwk only that fits
 * alg, no crit/b64, signature, jti, htu form), so that inspect cannot drift from what a server
 * refuses. The request the proof is checked against is the one it names; its age is explained
 * with its `iat` claim, so the verdict is taken at the time it was minted.
 */
async function checkProof(jwt: string, payload: JWTPayload): Promise<InspectCheck> {
  const iat = typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat : NaN
  try {
    await verifyProof(jwt, {
      htm: typeof payload.htm === 'string' ? payload.htm : '',
      htu: typeof payload.htu === 'string' ? payload.htu : 'invalid:',
      ...(Number.isNaN(iat) ? {} : { clock: () => iat * 1000 }),
    })
    return {
      check: 'signature',
      ok: true,
      detail:
        'valid, by the key embedded in the proof, under callproof’s proof rules (this shows the holder of that key signed it; the token binding says whose key it must be)',
    }
  } catch (error) {
    return { check: 'signature', ok: false, detail: `refused by callproof: ${messageOf(error)}` }
  }
}

function explainBinding(value: unknown): string {
  if (typeof value !== 'object' || value === null) {
    return 'call binding: not an object — refused'
  }
  const b = value as Record<string, unknown>
  if ('response' in b) {
    return `call binding: this request answers the server’s request id ${quote(b.response)}`
  }
  const parts = [`call binding: only for the JSON-RPC message ${quote(b.method)}`]
  if (b.name !== undefined) parts.push(`on ${quote(b.name)}`)
  if (b.args !== undefined) {
    parts.push(
      `with exactly the arguments whose canonical (RFC 8785) SHA-256 is ${quote(b.args)} — other arguments under this proof are refused`,
    )
  }
  return parts.join(' ')
}

/** Recomputes the `mcp` claim for a JSON-RPC body with the server's own rules and compares. */
async function checkBinding(claim: unknown, body: unknown): Promise<InspectCheck> {
  let expected: McpBinding
  try {
    expected = await bindingFor(body)
  } catch (error) {
    return {
      check: 'call binding',
      ok: false,
      detail: `--body is not one JSON-RPC message: ${messageOf(error)}`,
    }
  }
  if (bindingsEqual(claim, expected)) {
    return {
      check: 'call binding',
      ok: true,
      detail: 'the mcp claim matches the body given with --body',
    }
  }
  const c = (typeof claim === 'object' && claim !== null ? claim : {}) as Record<string, unknown>
  const e = expected as Record<string, unknown>
  const keys = new Set([...Object.keys(e), ...Object.keys(c)])
  const differing = [...keys].filter((k) => JSON.stringify(c[k]) !== JSON.stringify(e[k]))
  return {
    check: 'call binding',
    ok: false,
    detail: `the mcp claim differs from the body in ${quote(differing.join(', ') || 'its shape')} (the body needs ${safeText(expected, { max: 300 })}) — refused`,
  }
}

async function explainToken(
  jwt: string,
  header: ProtectedHeaderParameters,
  payload: JWTPayload,
  options: InspectOptions,
  now: number,
  claims: ExplainedField[],
  checks: InspectCheck[],
) {
  for (const [name, value] of Object.entries(payload)) {
    switch (name) {
      case 'iss':
        claims.push({
          name,
          value,
          meaning: 'the authorization server that issued it; servers trust only issuers they name',
        })
        break
      case 'sub':
        claims.push({ name, value, meaning: 'the user the token speaks for' })
        break
      case 'aud':
        claims.push({
          name,
          value,
          meaning:
            'the resource(s) it is for (RFC 8707): any other server must refuse it, so it cannot be passed through',
        })
        break
      case 'exp': {
        const expired = typeof value === 'number' && value * 1000 <= now
        claims.push({
          name,
          value,
          meaning: `expires ${time(value, now)}${expired ? ' — expired: refused' : ''}`,
          status: expired ? 'bad' : 'ok',
        })
        break
      }
      case 'iat':
        claims.push({ name, value, meaning: `issued ${time(value, now)}` })
        break
      case 'nbf':
        claims.push({ name, value, meaning: `not valid before ${time(value, now)}` })
        break
      case 'jti':
        claims.push({
          name,
          value,
          meaning:
            'unique id of this token (a per-call approval token is consumed by its jti and serves one call)',
        })
        break
      case 'client_id':
        claims.push({ name, value, meaning: 'the client (agent) the token was issued to' })
        break
      case 'scope':
        claims.push({
          name,
          value,
          meaning: `permissions granted: ${safeText(
            String(value).split(' ').filter(Boolean).join(', '),
            { max: 200 },
          )}; each tool names the scopes it needs`,
        })
        break
      case 'cnf': {
        const jkt = (value as { jkt?: unknown } | null)?.jkt
        claims.push({
          name,
          value,
          meaning:
            typeof jkt === 'string'
              ? `sender-constrained (RFC 9449): usable only with proofs signed by the key whose thumbprint is ${quote(jkt)}; a stolen copy is useless without that private key`
              : 'no cnf.jkt: not bound to a key, a bearer token — callproof refuses it',
          status: typeof jkt === 'string' ? 'ok' : 'bad',
        })
        break
      }
      case 'acr':
        claims.push({
          name,
          value,
          meaning: `how the user signed in: ${(Object.hasOwn(ACR_MEANING, String(value)) ? ACR_MEANING[String(value)] : undefined) ?? 'a level callproof does not know'}`,
        })
        break
      case 'auth_time':
        claims.push({
          name,
          value,
          meaning: `the user signed in ${time(value, now)}; tools with max_age ask for a fresh sign-in after that many seconds`,
        })
        break
      case 'authorization_details':
        claims.push({ name, value, meaning: explainAuthorizationDetails(value) })
        break
      case 'amr':
        claims.push({ name, value, meaning: 'the sign-in methods used' })
        break
      case 'sid':
        claims.push({
          name,
          value,
          meaning: 'the user’s sign-in session at the authorization server',
        })
        break
      default:
        claims.push({ name, value, meaning: 'claim callproof does not use' })
    }
  }
  if (kind(header, payload) === 'access-token' && !('cnf' in payload)) {
    claims.push({
      name: 'cnf',
      value: undefined,
      meaning: 'missing: not bound to a key, a bearer token — callproof refuses it',
      status: 'bad',
    })
  }

  // Keys come only from an issuer the user named: a token's own iss is what a forger writes, so
  // fetching keys from it would have the forger's server vouch for the forger's token.
  const issuer = options.issuer
  if (issuer === undefined) {
    checks.push({
      check: 'signature',
      ok: false,
      detail:
        'NOT VERIFIED: no --issuer given (the token’s own iss is not trusted to name its keys); pass --issuer <url> to check it against that issuer’s published keys',
    })
    return
  }
  if (payload.iss !== issuer) {
    checks.push({
      check: 'issuer',
      ok: false,
      detail: `the token names ${quote(payload.iss ?? 'no issuer')}, not ${quote(issuer)} — refused`,
    })
  }
  try {
    const jwksUri = await discoverJwksUri(issuer, options.fetch ?? fetch)
    const fetchImpl = options.fetch ?? fetch
    const keys = createRemoteJWKSet(jwksUri, {
      timeoutDuration: FETCH_TIMEOUT_MS,
      // The key set is read with the same cap as the metadata: the issuer is named by the user,
      // but its answer is still not held in memory without bound.
      [customFetch]: async (url, init) => {
        const response = await fetchImpl(url, { ...init, redirect: 'error' })
        const text = await readCapped(response, 'key set')
        return new Response(text, { status: response.status, headers: response.headers })
      },
    })
    await compactVerify(jwt, keys, { algorithms: [...TOKEN_ALGORITHMS] })
    checks.push({
      check: 'signature',
      ok: true,
      detail: `valid, by ${quote(issuer)}'s key${header.kid === undefined ? '' : ` ${quote(header.kid)}`} (${quote(jwksUri.href)})`,
    })
  } catch (error) {
    checks.push({
      check: 'signature',
      ok: false,
      detail: `NOT VERIFIED for ${quote(issuer)}: ${messageOf(error)}`,
    })
  }
}

/** How long inspect waits for an issuer's metadata or keys. */
const FETCH_TIMEOUT_MS = 10_000
/** The largest metadata document inspect reads (RFC 8414 documents are a few KiB). */
const METADATA_MAX_BYTES = 1024 * 1024

function kind(header: ProtectedHeaderParameters, payload: JWTPayload): Inspection['kind'] {
  return header.typ === 'at+jwt' || header.typ === 'application/at+jwt' || 'scope' in payload
    ? 'access-token'
    : 'jwt'
}

function explainAuthorizationDetails(value: unknown): string {
  if (!Array.isArray(value)) return 'authorization details (RFC 9396): not an array — ignored'
  const parts = value.map((d: unknown) => {
    const detail = (d ?? {}) as Record<string, unknown>
    if (detail.type === 'mcp_tool_call') {
      return `approval of exactly one call: tool ${quote(detail.tool)} on ${quote(detail.resource)} with the arguments whose digest is ${quote(detail.args)}; consumed by its first use`
    }
    return `a ${quote(detail.type)} detail callproof does not use`
  })
  return `authorization details (RFC 9396): ${parts.join('; ')}`
}

/**
 * The `jwks_uri` of `issuer`'s metadata (RFC 8414 §3, then OpenID discovery). The metadata must
 * name `issuer` itself (RFC 8414 §3.3: otherwise another server's keys could be served under this
 * issuer's name), and its `jwks_uri` must be https (or http on loopback).
 */
async function discoverJwksUri(issuer: string, fetchImpl: typeof fetch): Promise<URL> {
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new Error(`--issuer ${quote(issuer)} is not a URL`)
  }
  if (!isFetchable(url)) throw new Error(`--issuer must be https (or http on loopback)`)
  const base = issuer.replace(/\/$/, '')
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  // RFC 8414 path-inserted form first, then OpenID discovery (path-appended).
  const candidates = [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${base}/.well-known/openid-configuration`,
  ]
  for (const candidate of candidates) {
    const response = await fetchImpl(candidate, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    }).catch(() => undefined)
    if (response?.ok !== true) continue
    const metadata = await readMetadata(response)
    if (metadata.issuer !== issuer) {
      throw new Error(
        `the metadata at ${quote(candidate)} names issuer ${quote(metadata.issuer ?? 'none')}, not ${quote(issuer)}`,
      )
    }
    if (typeof metadata.jwks_uri !== 'string') continue
    let jwksUri: URL
    try {
      jwksUri = new URL(metadata.jwks_uri)
    } catch {
      throw new Error(`the metadata's jwks_uri ${quote(metadata.jwks_uri)} is not a URL`)
    }
    if (!isFetchable(jwksUri) || (jwksUri.protocol === 'http:' && url.protocol !== 'http:')) {
      throw new Error(`the metadata's jwks_uri ${quote(jwksUri.href)} is not https`)
    }
    return jwksUri
  }
  throw new Error(`no authorization server metadata with a jwks_uri at ${quote(issuer)}`)
}

/** A response body as text, read up to {@link METADATA_MAX_BYTES}. */
async function readCapped(response: Response, what: string): Promise<string> {
  const reader = response.body?.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const chunk = reader === undefined ? undefined : await reader.read()
    if (chunk === undefined || chunk.done) break
    size += chunk.value.byteLength
    if (size > METADATA_MAX_BYTES) {
      await reader?.cancel().catch(() => undefined)
      throw new Error(`the issuer's ${what} is larger than ${METADATA_MAX_BYTES} bytes`)
    }
    chunks.push(chunk.value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A metadata document, read up to {@link METADATA_MAX_BYTES}. */
async function readMetadata(response: Response): Promise<{ issuer?: unknown; jwks_uri?: unknown }> {
  const text = await readCapped(response, 'metadata')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error('the issuer’s metadata is not JSON')
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new Error('the issuer’s metadata is not a JSON object')
  }
  return parsed as { issuer?: unknown; jwks_uri?: unknown }
}

/** A header parameter's or claim's value: the whole of it that fits a line, escaped. */
function show(value: unknown): string {
  if (value === undefined) return '—'
  return safeText(value, { max: 400 })
}

/** Renders an {@link Inspection} for a terminal. */
export function formatInspection(io: Pick<Io, 'color'>, inspection: Inspection): string {
  const title =
    inspection.kind === 'dpop-proof'
      ? 'DPoP proof (RFC 9449)'
      : inspection.kind === 'access-token'
        ? 'JWT access token (RFC 9068)'
        : 'JWT'
  const lines = [style(io, 'bold', title)]
  const mark = (status: ExplainedField['status']) =>
    status === 'bad' ? style(io, 'red', '✗') : status === 'warn' ? style(io, 'yellow', '!') : ' '
  const section = (name: string, fields: readonly ExplainedField[]) => {
    if (fields.length === 0) return
    lines.push('', style(io, 'bold', name))
    // Names, values and meanings all hold text from the JWT: each is escaped to one bounded line,
    // so that no claim can print a forged "✓ signature: valid" line or hide the real one.
    const names = fields.map((f) => safeText(f.name, { max: 40 }))
    const width = Math.max(...names.map((n) => n.length))
    fields.forEach((f, i) => {
      const name = names[i] ?? ''
      lines.push(`${mark(f.status)} ${style(io, 'cyan', name.padEnd(width))}  ${show(f.value)}`)
      lines.push(`  ${' '.repeat(width)}  ${style(io, 'dim', safeText(f.meaning, { max: 1000 }))}`)
    })
  }
  section('header', inspection.header)
  section('claims', inspection.claims)
  if (inspection.checks.length > 0) {
    lines.push('', style(io, 'bold', 'checks'))
    for (const c of inspection.checks) {
      lines.push(
        `${c.ok ? style(io, 'green', '✓') : style(io, 'red', '✗')} ${safeText(c.check, { max: 40 })}: ${safeText(c.detail, { max: 1000 })}`,
      )
    }
  }
  return lines.join('\n')
}

const HELP = `Usage: callproof inspect <jwt | -> [options]

Decodes a DPoP proof or an access token and explains every claim in plain words.
Verifies the signature when it can: a proof against the key it carries; a token
against the published keys of the issuer given with --issuer (never the token's
own iss: without --issuer a token's signature is reported as not verified).
"-" reads the JWT from stdin. A pasted "Authorization: DPoP …" line works too.

Options:
  --issuer <url>    authorization server whose JWKS verifies an access token
  --token <jwt>     (for a proof) the access token it was sent with: checks ath and cnf.jkt
  --body <json>     (for a proof) the JSON-RPC message it was sent with: checks the mcp binding
  --json            print the explanation as JSON
  -h, --help        show this help

Exit code: 0 when every check passed, 1 when one failed.`

/** Runs `callproof inspect`. */
export async function inspectCommand(argv: string[], io: Io, stdin?: () => Promise<string>) {
  const { values, positionals } = parse('inspect', argv, {
    issuer: { type: 'string' },
    token: { type: 'string' },
    body: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  if (positionals.length !== 1) {
    throw new UsageError('inspect takes exactly one JWT (or "-" to read it from stdin)', 'inspect')
  }
  const input = positionals[0] === '-' ? await (stdin ?? readStdin)() : (positionals[0] ?? '')
  let body: unknown
  if (values.body !== undefined) {
    try {
      body = JSON.parse(values.body)
    } catch {
      throw new UsageError(
        '--body must be JSON (the JSON-RPC message the proof was sent with)',
        'inspect',
      )
    }
  }
  const inspection = await inspectJwt(extractJwt(input), {
    ...(values.issuer === undefined ? {} : { issuer: values.issuer }),
    ...(values.token === undefined ? {} : { accessToken: extractJwt(values.token) }),
    ...(body === undefined ? {} : { body }),
  })
  io.out(values.json === true ? safeJson(inspection, 2) : formatInspection(io, inspection))
  return inspection.checks.every((c) => c.ok) ? 0 : 1
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
