/**
 * A proof on every request: signs a fresh DPoP proof per HTTP request, with the `mcp` call
 * binding computed from the exact body string being sent, so a proof cannot be moved to another
 * call. Remembers `DPoP-Nonce` per origin and retries once on `use_dpop_nonce`.
 *
 * @module
 */

import {
  accessTokenHash,
  bindingFor,
  createProof,
  normalizeHtu,
  parseWwwAuthenticate,
  type McpBinding,
  type ProofAlgorithm,
} from '@callproof/core'
import type { JWK } from 'jose'
import { resourceCovers } from './discovery.js'
import { CallproofClientError } from './errors.js'
import { assertRoutingHeadersMatch } from './headers.js'
import { nodeProofSigning } from './signing.js'
import type { TokenSet } from './stores.js'

/**
 * The last `DPoP-Nonce` each server origin supplied (RFC 9449 §8/§9).
 *
 * @example
 * ```ts
 * const nonces = new DpopNonces()
 * nonces.set('https://drive.example', 'n-1')
 * ```
 */
export class DpopNonces {
  readonly #byOrigin = new Map<string, string>()

  /** The nonce to put in the next proof for `url`'s origin. */
  get(url: string | URL): string | undefined {
    return this.#byOrigin.get(originOf(url))
  }

  /** Remembers the nonce a response from `url`'s origin supplied. */
  set(url: string | URL, nonce: string): void {
    this.#byOrigin.set(originOf(url), nonce)
  }
}

const originOf = (url: string | URL): string => (url instanceof URL ? url : new URL(url)).origin

let lastHtu: { href: string; htu: string } | undefined

/** normalizeHtu of the request URL; an agent calls one endpoint, so the last one is kept. */
function htuOf(target: URL): string {
  if (lastHtu?.href !== target.href) lastHtu = { href: target.href, htu: normalizeHtu(target) }
  return lastHtu.htu
}

/** The `ath` of the last token: an agent sends many requests with one token, so it is hashed once. */
let lastAth: { token: string; ath: Promise<string> } | undefined

function athOf(accessToken: string): Promise<string> {
  if (lastAth?.token !== accessToken)
    lastAth = { token: accessToken, ath: accessTokenHash(accessToken) }
  return lastAth.ath
}

/** Each proof key's public JWK, exported once: every proof's header carries it. */
const publicJwks = new WeakMap<CryptoKey, Promise<JsonWebKey>>()

function publicJwkOf(publicKey: CryptoKey): Promise<JsonWebKey> {
  let jwk = publicJwks.get(publicKey)
  if (jwk === undefined) {
    jwk = crypto.subtle.exportKey('jwk', publicKey)
    publicJwks.set(publicKey, jwk)
  }
  return jwk
}

/** The nonce memory of signers that brought none: one per signer object. */
const signerNonces = new WeakMap<ProofSigner, DpopNonces>()

function noncesOf(signer: ProofSigner): DpopNonces {
  if (signer.nonces !== undefined) return signer.nonces
  let nonces = signerNonces.get(signer)
  if (nonces === undefined) {
    nonces = new DpopNonces()
    signerNonces.set(signer, nonces)
  }
  return nonces
}

/**
 * What {@link sendWithProof} signs with.
 *
 * @example
 * ```ts
 * const signer: ProofSigner = { keyPair }
 * ```
 */
export interface ProofSigner {
  /** The proof key pair (the key the token is bound to). */
  keyPair: CryptoKeyPair
  /**
   * Nonce memory, shared by all requests of a client. Default: one kept for this signer object
   * (reuse the same signer for a client's requests).
   */
  nonces?: DpopNonces
  /** The JWS algorithm; default from the key (ES256 / EdDSA). */
  alg?: ProofAlgorithm
  /** The underlying fetch. */
  fetch?: typeof fetch
  /**
   * Pass the request's `Mcp-Method` / `Mcp-Name` headers on unchecked, for a proxy that relays
   * another client's requests (the server checks them against the body and the proof, which
   * still binds the body). Default false: a request whose headers name another call than its
   * body is refused before it is signed (`ERR_BINDING_MISMATCH`).
   */
  relayRoutingHeaders?: boolean
}

function bodyText(body: BodyInit | null | undefined): string | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return body
  if (body instanceof Uint8Array) return new TextDecoder().decode(body)
  if (body instanceof ArrayBuffer) return new TextDecoder().decode(new Uint8Array(body))
  // A stream or form cannot be bound without consuming it; the MCP transport always sends strings.
  throw new CallproofClientError(
    'ERR_INVALID_OPTIONS',
    'request body must be a string or bytes so the proof can bind the exact message',
  )
}

/**
 * The `mcp` binding of a request body, or `undefined` for requests without a body (GET, DELETE).
 *
 * @example
 * ```ts
 * await bindingOfBody('{"jsonrpc":"2.0","id":1,"method":"tools/list"}') // { method: 'tools/list' }
 * ```
 */
export async function bindingOfBody(body: string | undefined): Promise<McpBinding | undefined> {
  if (body === undefined || body === '') return undefined
  return bindingFor(JSON.parse(body))
}

/**
 * The `mcp` binding of a POST body, after checking that the request's SEP-2243 routing headers
 * (`Mcp-Method`, `Mcp-Name`, sent by SDK v2 on 2026-07-28) name the same call as the body the
 * proof binds.
 */
async function bindingOfRequest(
  headers: HeadersInit | undefined,
  body: string | undefined,
  relay: boolean,
): Promise<McpBinding | undefined> {
  const message: unknown = body === undefined || body === '' ? undefined : JSON.parse(body)
  if (!relay) assertRoutingHeadersMatch(new Headers(headers), message)
  return message === undefined ? undefined : bindingFor(message)
}

function nonceChallenged(response: Response): boolean {
  if (response.status !== 401 && response.status !== 400) return false
  const header = response.headers.get('www-authenticate') ?? ''
  return parseWwwAuthenticate(header).some((c) => c.params.error === 'use_dpop_nonce')
}

/**
 * Sends one request with `token` (when given): a fresh proof (new `jti`, `iat`, the body's `mcp`
 * binding, `ath`, the origin's nonce) for a DPoP token, `Bearer` for a Bearer token. Redirects are
 * not followed, so a token never travels to another URL. A token is only attached to a URL its
 * resource covers.
 *
 * @throws {@link CallproofClientError} `ERR_UNSAFE_URL` when `url` is outside the token's resource
 * @example
 * ```ts
 * const res = await sendWithProof(signer, url, { method: 'POST', body, headers }, tokens)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export async function sendWithProof(
  signer: ProofSigner,
  url: string | URL,
  init: RequestInit,
  token: TokenSet | undefined,
): Promise<Response> {
  const target = new URL(url)
  if (token !== undefined && !resourceCovers(token.resource, target)) {
    throw new CallproofClientError(
      'ERR_UNSAFE_URL',
      `refusing to send a token for ${token.resource} to ${target.origin}${target.pathname}`,
    )
  }
  const method = (init.method ?? 'GET').toUpperCase()
  const body = bodyText(init.body)
  const mcp =
    method === 'POST'
      ? await bindingOfRequest(init.headers, body, signer.relayRoutingHeaders === true)
      : undefined
  const baseFetch = signer.fetch ?? fetch
  const send = async (): Promise<Response> => {
    const headers = new Headers(init.headers)
    headers.delete('authorization')
    headers.delete('dpop')
    if (token !== undefined) {
      if (token.tokenType === 'dpop') {
        const nonce = noncesOf(signer).get(target)
        headers.set('authorization', `DPoP ${token.accessToken}`)
        headers.set(
          'dpop',
          await createProof(
            signer.keyPair,
            {
              htm: method,
              htu: htuOf(target),
              accessToken: token.accessToken,
              ath: await athOf(token.accessToken),
              ...(nonce !== undefined && { nonce }),
              ...(mcp !== undefined && { mcp }),
            },
            {
              sign: nodeProofSigning,
              publicJwk: (await publicJwkOf(signer.keyPair.publicKey)) as JWK,
              ...(signer.alg && { alg: signer.alg }),
            },
          ),
        )
      } else {
        headers.set('authorization', `Bearer ${token.accessToken}`)
      }
    }
    const response = await baseFetch(target, {
      ...init,
      method,
      headers,
      ...(body !== undefined && { body }),
      redirect: 'manual',
    })
    const supplied = response.headers.get('dpop-nonce')
    if (supplied !== null && supplied !== '') noncesOf(signer).set(target, supplied)
    return response
  }
  const first = await send()
  if (token?.tokenType === 'dpop' && nonceChallenged(first) && first.headers.has('dpop-nonce')) {
    // RFC 9449 §9: one retry with the nonce just supplied; a second refusal is the caller's.
    await first.body?.cancel()
    return send()
  }
  return first
}

/**
 * A `fetch` that signs every request with a fixed token source; for custom stacks that handle
 * challenges themselves. `connect()` uses {@link sendWithProof} through its challenge layer.
 *
 * @example
 * ```ts
 * const transport = new StreamableHTTPClientTransport(url, {
 *   fetch: createProofFetch(signer, () => tokens),
 * })
 * ```
 */
export function createProofFetch(
  signer: ProofSigner,
  token: () => TokenSet | undefined | Promise<TokenSet | undefined>,
): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    return sendWithProof(signer, url, init ?? {}, await token())
  }
}
