/**
 * The fast paths of proof creation and verification keep every check: remembered headers
 * (allowlist re-checked), the reused signing-input buffer under concurrency, the ASCII payload
 * path (non-ASCII and invalid UTF-8 payloads), a precomputed `ath`.
 */
import { base64url } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  CallproofError,
  KeyCache,
  accessTokenHash,
  createProof,
  verifyProof,
} from '../src/index.js'
import type { VerifyProofOptions } from '../src/index.js'
import { NOW, RESOURCE, clientKeys, clock, publicJwk } from './helpers.js'

const TOKEN = 'token-fast'
const base: VerifyProofOptions = { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, clock }

async function reason(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  return (err as CallproofError).message
}

/** Signs raw payload bytes (not necessarily valid UTF-8) under an honest header. */
async function signBytes(keys: CryptoKeyPair, payload: Uint8Array): Promise<string> {
  const header = base64url.encode(
    JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk(keys) }),
  )
  const input = `${header}.${base64url.encode(payload)}`
  const sig = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    keys.privateKey,
    new TextEncoder().encode(input),
  )
  return `${input}.${base64url.encode(new Uint8Array(sig))}`
}

describe('remembered proof headers', () => {
  it('a header accepted under one allowlist is refused under another that excludes its alg', async () => {
    const keys = await clientKeys()
    const keyCache = new KeyCache()
    const proof = () =>
      createProof(keys, { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, iat: NOW })
    await verifyProof(await proof(), { ...base, keyCache })
    expect(
      await reason(verifyProof(await proof(), { ...base, keyCache, algorithms: ['EdDSA'] })),
    ).toMatch(/proof alg ES256 is not allowed/)
  })

  it('a remembered header does not vouch for a bad signature or for another key', async () => {
    const keys = await clientKeys()
    const other = await clientKeys()
    const keyCache = new KeyCache()
    const good = await createProof(keys, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: TOKEN,
      iat: NOW,
    })
    await verifyProof(good, { ...base, keyCache })
    // Same header segment, payload and signature of another key's proof.
    const forged = await createProof(other, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: TOKEN,
      iat: NOW,
    })
    const spliced = `${good.split('.')[0]}.${forged.split('.')[1]}.${forged.split('.')[2]}`
    expect(await reason(verifyProof(spliced, { ...base, keyCache }))).toMatch(
      /signature verification failed/,
    )
  })
})

describe('the reused signing-input buffer', () => {
  it('many proofs verified concurrently each get their own verdict', async () => {
    const keys = await clientKeys()
    const keyCache = new KeyCache()
    const proofs = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        createProof(keys, {
          htm: 'POST',
          htu: RESOURCE,
          accessToken: TOKEN,
          iat: NOW,
          jti: `j-${i}`,
          mcp: { method: 'tools/call', name: `tool-${i}`, args: 'x'.repeat(i * 7) },
        }),
      ),
    )
    // Every fifth proof carries another proof's signature: only those must fail.
    const sent = proofs.map((p, i) =>
      i % 5 === 0
        ? `${p.slice(0, p.lastIndexOf('.'))}${proofs[i + 1]!.slice(proofs[i + 1]!.lastIndexOf('.'))}`
        : p,
    )
    const verdicts = await Promise.all(
      sent.map((p) =>
        verifyProof(p, { ...base, keyCache }).then(
          (v) => v.jti,
          () => 'refused',
        ),
      ),
    )
    verdicts.forEach((v, i) => expect(v, `proof ${i}`).toBe(i % 5 === 0 ? 'refused' : `j-${i}`))
  })
})

describe('payload decoding', () => {
  it('accepts a payload with non-ASCII text (UTF-8) and reads it exactly', async () => {
    const keys = await clientKeys()
    const payload = {
      jti: 'jti-ü',
      htm: 'POST',
      htu: RESOURCE,
      iat: NOW,
      ath: await accessTokenHash(TOKEN),
      mcp: { method: 'tools/call', name: 'résumé 📄' },
    }
    const proof = await signBytes(keys, new TextEncoder().encode(JSON.stringify(payload)))
    expect(await verifyProof(proof, base)).toMatchObject({ jti: 'jti-ü', mcp: payload.mcp })
  })

  it('refuses a payload that is not valid UTF-8', async () => {
    const keys = await clientKeys()
    const json = new TextEncoder().encode(
      JSON.stringify({ jti: 'XX', htm: 'POST', htu: RESOURCE, iat: NOW }),
    )
    // Replace the jti's two letters with a lone continuation byte and an overlong lead byte.
    const at = json.indexOf(0x58)
    json[at] = 0x80
    json[at + 1] = 0xc0
    expect(await reason(verifyProof(await signBytes(keys, json), base))).toMatch(
      /not valid base64url JSON/,
    )
  })
})

describe('createProof with a precomputed ath', () => {
  it('uses the given ath, which the verifier then checks against the token', async () => {
    const keys = await clientKeys()
    const ath = await accessTokenHash(TOKEN)
    const proof = await createProof(keys, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: TOKEN,
      ath,
      iat: NOW,
    })
    await expect(verifyProof(proof, base)).resolves.toMatchObject({ iat: NOW })
    const wrong = await createProof(keys, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: TOKEN,
      ath: await accessTokenHash('another token'),
      iat: NOW,
    })
    expect(await reason(verifyProof(wrong, base))).toMatch(/ath does not match/)
  })

  it('accessTokenHash gives the right hash when tokens alternate (the memo is per last token)', async () => {
    const expected = async (t: string) =>
      base64url.encode(
        new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(t))),
      )
    for (const t of ['a', 'b', 'a', 'a', 'c', 'b']) {
      expect(await accessTokenHash(t)).toBe(await expected(t))
    }
  })

  it('refuses to sign with an alg that does not fit the key', async () => {
    const keys = await clientKeys()
    await expect(
      createProof(keys, { htm: 'POST', htu: RESOURCE, iat: NOW }, { alg: 'EdDSA' }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
  })
})
