/**
 * Proof makers. Well-formed proofs come from core's `createProof` (what a real client sends); the
 * raw maker signs whatever header and claims a test asks for with jose, so the suite can send the
 * malformed proofs (alg none, HMAC, wrong typ, private jwk, …) that core would never produce.
 *
 * The call binding (`mcp` claim) is computed here independently of core (RFC 8785 via the
 * `canonicalize` package), so a wrong digest in core would show up as refused controls.
 */
import canonicalize from 'canonicalize'
import { CompactSign, base64url, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import { createProof } from '@callproof/core'
import type { McpBinding } from '@callproof/core'

/** A caller's DPoP key pair with its public JWK and RFC 7638 thumbprint. */
export interface CallerKey {
  keyPair: CryptoKeyPair
  publicJwk: JWK
  jkt: string
}

/** A fresh ES256 key pair, private key non-extractable, as a real client holds it. */
export async function newCallerKey(alg: 'ES256' | 'Ed25519' = 'ES256'): Promise<CallerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg)
  const publicJwk = await exportJWK(publicKey)
  return {
    keyPair: { privateKey, publicKey } as CryptoKeyPair,
    publicJwk,
    jkt: await calculateJwkThumbprint(publicJwk),
  }
}

/** base64url(SHA-256(bytes or UTF-8 text)). */
export async function sha256b64u(input: string | Uint8Array): Promise<string> {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : new Uint8Array(input)
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

/** The argument digest as DESIGN.md defines it: b64url(SHA-256(JCS(args ?? {}))). */
export async function argsDigest(args: unknown): Promise<string> {
  const canonical = canonicalize(args ?? {})
  if (canonical === undefined) throw new Error('arguments cannot be canonicalized')
  return sha256b64u(canonical)
}

/** The `mcp` binding of one JSON-RPC message, per DESIGN.md. */
export async function bindingOf(message: Record<string, unknown>): Promise<McpBinding> {
  if (!('method' in message)) return { response: message.id as string | number }
  const method = message.method as string
  const params = (message.params ?? {}) as Record<string, unknown>
  if (method === 'tools/call' || method === 'prompts/get') {
    return { method, name: params.name as string, args: await argsDigest(params.arguments) }
  }
  if (
    method === 'resources/read' ||
    method === 'resources/subscribe' ||
    method === 'resources/unsubscribe'
  ) {
    return { method, name: params.uri as string }
  }
  return { method }
}

/** Inputs of a well-formed proof. */
export interface ProofInput {
  htm: string
  htu: string
  accessToken?: string | undefined
  /** `undefined` (explicitly) sends a proof without an `mcp` claim. */
  mcp?: McpBinding | undefined
  jti?: string | undefined
  /** Seconds since the epoch. */
  iat?: number | undefined
  nonce?: string | undefined
}

/** A proof from core's `createProof` (ES256). */
export function makeProof(key: CallerKey, input: ProofInput): Promise<string> {
  const clean = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined))
  return createProof(key.keyPair, clean as Parameters<typeof createProof>[1])
}

/** Header and claims of a raw proof; `undefined` values are dropped. */
export interface RawProofInput {
  header: Record<string, unknown>
  claims: Record<string, unknown>
  /** Signing key; omitted for `alg: none`. */
  key?: CryptoKey | Uint8Array
}

/** Sign exactly what the test asks (or leave it unsigned when `alg` is `none`). */
export async function rawProof({ header, claims, key }: RawProofInput): Promise<string> {
  const drop = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
  const payload = new TextEncoder().encode(JSON.stringify(drop(claims)))
  if (header.alg === 'none' || key === undefined) {
    const enc = (v: Uint8Array | string) => base64url.encode(v)
    return `${enc(JSON.stringify(drop(header)))}.${enc(payload)}.`
  }
  return new CompactSign(payload).setProtectedHeader(drop(header) as { alg: string }).sign(key)
}

/** Default proof claims for a raw proof, matching what core would put in. */
export async function defaultProofClaims(input: ProofInput): Promise<Record<string, unknown>> {
  return {
    jti: input.jti ?? crypto.randomUUID(),
    htm: input.htm,
    htu: input.htu,
    iat: input.iat ?? Math.floor(Date.now() / 1000),
    ath: input.accessToken === undefined ? undefined : await sha256b64u(input.accessToken),
    nonce: input.nonce,
    mcp: input.mcp,
  }
}
