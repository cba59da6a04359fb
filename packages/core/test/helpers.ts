/** Test helpers: real keys, real signatures, tokens minted in the test by a local "issuer". */
import { SignJWT, base64url, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose'
import type { JWK, JWTPayload } from 'jose'
import {
  MemoryReplayStore,
  bindingFor,
  createProof,
  createVerifier,
  jwkThumbprint,
} from '../src/index.js'
import type { KeyResolver, McpBinding, VerifierOptions } from '../src/index.js'

export const RESOURCE = 'https://drive.example.com/mcp'
export const ISSUER = 'https://as.example.com'
export const NOW_MS = Date.UTC(2026, 10, 23, 12, 0, 0)
export const NOW = NOW_MS / 1000
export const clock = (): number => NOW_MS

export async function clientKeys(kind: 'P-256' | 'Ed25519' = 'P-256'): Promise<CryptoKeyPair> {
  if (kind === 'Ed25519') {
    return (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair
  }
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])
}

export async function publicJwk(keys: CryptoKeyPair): Promise<JWK> {
  const jwk = await exportJWK(keys.publicKey)
  return jwk.kty === 'EC'
    ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! }
    : { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }
}

export async function thumbprintOf(keys: CryptoKeyPair): Promise<string> {
  return jwkThumbprint(await publicJwk(keys))
}

/** An issuer with a real ES256 key and a local JWKS. */
export async function issuer(iss = ISSUER) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  const keys = createLocalJWKSet({ keys: [jwk] })
  async function mint(
    claims: JWTPayload & Record<string, unknown>,
    header: Record<string, unknown> = {},
  ): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1', ...header } as never)
      .sign(privateKey)
  }
  async function token(jkt: string, extra: Record<string, unknown> = {}): Promise<string> {
    return mint({
      iss,
      sub: 'alice',
      aud: RESOURCE,
      client_id: 'client-1',
      jti: `tok-${crypto.randomUUID()}`,
      iat: NOW - 10,
      exp: NOW + 300,
      scope: 'drive:read drive:write',
      cnf: { jkt },
      ...extra,
    })
  }
  return { iss, keys, mint, token, privateKey }
}

/** Signs any header/payload with an ECDSA P-256 or Ed25519 key: for proofs no honest client makes. */
export async function signRaw(
  header: Record<string, unknown>,
  payload: unknown,
  privateKey: CryptoKey,
): Promise<string> {
  const enc = (v: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(v)))
  const input = `${enc(header)}.${enc(payload)}`
  const algorithm =
    privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' }
  const sig = await crypto.subtle.sign(algorithm, privateKey, new TextEncoder().encode(input))
  return `${input}.${base64url.encode(new Uint8Array(sig))}`
}

export const toolCall = (
  name = 'read_file',
  args: unknown = { path: 'notes.txt' },
  id: number | string = 1,
) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
})

export async function proofFor(
  keys: CryptoKeyPair,
  token: string,
  message: unknown,
  overrides: Partial<{
    htm: string
    htu: string
    iat: number
    jti: string
    nonce: string
    mcp: McpBinding
  }> = {},
): Promise<string> {
  const input: Parameters<typeof createProof>[1] = {
    htm: overrides.htm ?? 'POST',
    htu: overrides.htu ?? RESOURCE,
    accessToken: token,
    iat: overrides.iat ?? NOW,
  }
  if (overrides.jti !== undefined) input.jti = overrides.jti
  if (overrides.nonce !== undefined) input.nonce = overrides.nonce
  if (overrides.mcp !== undefined) input.mcp = overrides.mcp
  else if (message !== undefined) input.mcp = await bindingFor(message)
  return createProof(keys, input)
}

/**
 * A verifier for RESOURCE that trusts ISSUER's `keys`, on the fixed test clock, with a fresh
 * memory replay store (returned too, so tests can look into it); `extra` overrides any option.
 */
export function verifierWith(keys: KeyResolver, extra: Partial<VerifierOptions> = {}) {
  const replay = new MemoryReplayStore({ clock })
  const verifier = createVerifier({
    resource: RESOURCE,
    issuers: [ISSUER],
    keys,
    replay,
    clock,
    ...extra,
  })
  return { verifier, replay }
}
