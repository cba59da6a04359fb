/**
 * The signing and signature-check hooks of createProof / verifyProof: what a runtime plugs in to
 * sign or verify more cheaply (the Node client and server do). The hook may change the cost, never
 * the outcome: a wrong answer from it is refused, and it cannot be handed another request's bytes.
 */
import { describe, expect, it } from 'vitest'
import {
  CallproofError,
  MemoryReplayStore,
  createProof,
  createVerifier,
  verifyProof,
  webCryptoProofSigning,
  webCryptoProofVerification,
} from '../src/index.js'
import type { ProofSignatureCheck, ProofSigningFunction, VerifyProofOptions } from '../src/index.js'
import { NOW, RESOURCE, clientKeys, clock } from './helpers.js'

const base: VerifyProofOptions = { htm: 'POST', htu: RESOURCE, clock }
const input = { htm: 'POST', htu: RESOURCE, iat: NOW }

const webSign: ProofSigningFunction = async (data, key, alg) =>
  new Uint8Array(
    await crypto.subtle.sign(
      alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' },
      key,
      data,
    ),
  )
const webCheck: ProofSignatureCheck = (data, signature, key, alg) =>
  crypto.subtle.verify(
    alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' },
    key,
    signature,
    data,
  )

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  return (err as CallproofError).code
}

describe('createProof with a signing function', () => {
  it('signs through it, for ES256 and Ed25519, and the proof verifies with Web Crypto', async () => {
    for (const kind of ['P-256', 'Ed25519'] as const) {
      const keys = await clientKeys(kind)
      const seen: string[] = []
      const sign: ProofSigningFunction = (data, key, alg) => {
        seen.push(alg)
        return webSign(data, key, alg)
      }
      const proof = await createProof(keys, input, { sign })
      expect(seen).toEqual([kind === 'P-256' ? 'ES256' : 'EdDSA'])
      await expect(verifyProof(proof, base)).resolves.toMatchObject({ iat: NOW })
    }
  })

  it('refuses a signature that is not 64 bytes (a DER signature, for one)', async () => {
    const keys = await clientKeys()
    const der: ProofSigningFunction = () => new Uint8Array(71)
    expect(await codeOf(createProof(keys, input, { sign: der }))).toBe('ERR_INVALID_OPTIONS')
  })

  it('turns a throwing or rejecting function into ERR_INVALID_OPTIONS', async () => {
    const keys = await clientKeys()
    const throws: ProofSigningFunction = () => {
      throw new TypeError('no such key')
    }
    const rejects: ProofSigningFunction = () => Promise.reject(new TypeError('no such key'))
    expect(await codeOf(createProof(keys, input, { sign: throws }))).toBe('ERR_INVALID_OPTIONS')
    expect(await codeOf(createProof(keys, input, { sign: rejects }))).toBe('ERR_INVALID_OPTIONS')
  })
})

describe('verifyProof with a signature check', () => {
  it('accepts only when the check answers exactly true', async () => {
    const keys = await clientKeys()
    const proof = await createProof(keys, input)
    await expect(verifyProof(proof, { ...base, verifySignature: webCheck })).resolves.toBeDefined()
    for (const answer of [false, 1, 'true', {}, undefined]) {
      const check = (() => answer) as unknown as ProofSignatureCheck
      expect(await codeOf(verifyProof(proof, { ...base, verifySignature: check }))).toBe(
        'ERR_INVALID_PROOF',
      )
    }
  })

  it('refuses a tampered proof through the check, and a throwing check', async () => {
    const keys = await clientKeys()
    const proof = await createProof(keys, input)
    const [h, p, s] = proof.split('.') as [string, string, string]
    const other = await createProof(keys, { ...input, htm: 'GET' })
    const spliced = `${h}.${p}.${other.split('.')[2]!}`
    expect(s).not.toBe(other.split('.')[2])
    expect(await codeOf(verifyProof(spliced, { ...base, verifySignature: webCheck }))).toBe(
      'ERR_INVALID_PROOF',
    )
    const throws: ProofSignatureCheck = () => {
      throw new Error('broken')
    }
    expect(await codeOf(verifyProof(proof, { ...base, verifySignature: throws }))).toBe(
      'ERR_INVALID_PROOF',
    )
  })

  it('hands each check its own bytes: a check that awaits first still sees its own proof', async () => {
    // A signature spliced onto another payload must fail even when the check reads its input
    // late, after other proofs were verified in between (the verifier reuses a scratch buffer
    // for Web Crypto, which copies on entry; a hook might not).
    const keys = await clientKeys()
    // Same length (jti 'honest' / 'forged'), so that a shared buffer would hold exactly the
    // honest signing input when the forged proof's check reads it.
    const honest = await createProof(keys, { ...input, jti: 'honest' })
    const [, , honestSignature] = honest.split('.') as [string, string, string]
    const forged = await createProof(keys, { ...input, htm: 'POST', jti: 'forged' })
    const [fh, fp] = forged.split('.') as [string, string, string]
    const splice = `${fh}.${fp}.${honestSignature}`
    // The forged proof's check reads its input only once the honest proof's check has been
    // called, that is once the honest bytes have been written wherever the verifier keeps them
    // (not after a fixed delay, which a slow key import on a busy machine could outlast). The
    // 5 s fallback only keeps a broken verifier from hanging the test; the honest result then
    // fails it.
    let honestCalled!: () => void
    const honestReached = new Promise<void>((resolve) => (honestCalled = resolve))
    const late: ProofSignatureCheck = async (data, signature, key, alg) => {
      if (new TextDecoder().decode(data) === `${fh}.${fp}`) {
        await Promise.race([honestReached, new Promise((resolve) => setTimeout(resolve, 5_000))])
      } else {
        honestCalled()
      }
      return webCheck(data, signature, key, alg)
    }
    const options = { ...base, verifySignature: late }
    // The honest proof starts second, so its bytes are the last written before the forged
    // proof's check reads.
    const [forgedResult, honestResult] = await Promise.allSettled([
      verifyProof(splice, options),
      verifyProof(honest, options),
    ])
    expect(honestResult.status).toBe('fulfilled')
    expect(forgedResult.status).toBe('rejected')
  })

  it('verifyProof refuses a verifySignature that is not a function, as an options error', async () => {
    const keys = await clientKeys()
    const proof = await createProof(keys, input)
    expect(await codeOf(verifyProof(proof, { ...base, verifySignature: 'node' as never }))).toBe(
      'ERR_INVALID_OPTIONS',
    )
  })

  it('exports the Web Crypto defaults, which a hook can fall back to', async () => {
    for (const kind of ['P-256', 'Ed25519'] as const) {
      const keys = await clientKeys(kind)
      const proof = await createProof(keys, input, { sign: webCryptoProofSigning })
      await expect(
        verifyProof(proof, { ...base, verifySignature: webCryptoProofVerification }),
      ).resolves.toMatchObject({ iat: NOW })
    }
  })

  it('createVerifier refuses a verifySignature that is not a function', () => {
    expect(() =>
      createVerifier({
        resource: RESOURCE,
        issuers: ['https://as.example.com'],
        keys: () => Promise.reject(new Error('unused')),
        replay: new MemoryReplayStore(),
        verifySignature: 'node' as never,
      }),
    ).toThrow(/verifySignature must be a function/)
  })
})
