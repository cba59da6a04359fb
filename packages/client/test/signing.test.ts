/**
 * The Node signing path for proofs: the same non-extractable key, signatures every verifier
 * accepts (checked here with core's default Web Crypto verification), refusal of a key that
 * cannot or must not sign, and Web Crypto where Node deprecates a handle to the key (a
 * non-extractable key on Node 24 and later, DEP0204) — without a deprecation warning.
 */
import { createProof, verifyProof } from '@callproof/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  generateProofKeyPair,
  nodeProofSigning,
  sendWithProof,
  type TokenSet,
} from '../src/index.js'
import { DpopNonces } from '../src/fetch.js'

const htu = 'https://drive.example.com/mcp'
const NODE_MAJOR = Number(process.versions.node.split('.')[0])

/** Runs `fn` and returns the process warnings emitted meanwhile (deprecations among them). */
async function warningsDuring(fn: () => Promise<void>): Promise<string[]> {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  try {
    await fn()
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return warnings
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('nodeProofSigning', () => {
  it('signs ES256 and Ed25519 proofs that Web Crypto verifies, and the key stays non-extractable', async () => {
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const keyPair = await generateProofKeyPair(alg)
      const proof = await createProof(
        keyPair,
        { htm: 'POST', htu, accessToken: 'token-1' },
        { sign: nodeProofSigning },
      )
      await expect(
        verifyProof(proof, { htm: 'POST', htu, accessToken: 'token-1' }),
      ).resolves.toMatchObject({ jti: expect.any(String) as unknown })
      expect(keyPair.privateKey.extractable).toBe(false)
      await expect(crypto.subtle.exportKey('pkcs8', keyPair.privateKey)).rejects.toThrow()
    }
  })

  it('refuses a public key, a key without the sign usage, and a key that does not fit alg', async () => {
    // Extractable keys, so that node:crypto is used on every Node version.
    const es = await generateProofKeyPair('ES256', { extractable: true })
    const ed = await generateProofKeyPair('Ed25519', { extractable: true })
    const data = new TextEncoder().encode('header.payload')
    expect(() => nodeProofSigning(data, es.publicKey, 'ES256')).toThrow(/private key/)
    // A P-256 key made for ECDH: Web Crypto would not sign with it, so neither may this.
    const ecdh = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
      'deriveBits',
    ])
    expect(() => nodeProofSigning(data, ecdh.privateKey, 'ES256')).toThrow(/sign usage/)
    expect(() => nodeProofSigning(data, ed.privateKey, 'ES256')).toThrow(/P-256/)
    expect(() => nodeProofSigning(data, es.privateKey, 'EdDSA')).toThrow(/Ed25519/)
    // Through createProof, the refusal is the documented options error.
    await expect(
      createProof(ed, { htm: 'POST', htu }, { alg: 'ES256', sign: nodeProofSigning }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
  })

  it('is what sendWithProof signs with: node:crypto where Node allows, Web Crypto on Node 24+, never a warning', async () => {
    const keyPair = await generateProofKeyPair('ES256')
    const subtleSign = vi.spyOn(crypto.subtle, 'sign')
    const token: TokenSet = {
      accessToken: 'token-1',
      tokenType: 'dpop',
      issuer: 'https://as.example.com',
      resource: htu,
      scopes: [],
    }
    let proof: string | null = null
    const fetch: typeof globalThis.fetch = (_input, init) => {
      proof = new Headers(init?.headers).get('dpop')
      return Promise.resolve(new Response('{}', { status: 200 }))
    }
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    const warnings = await warningsDuring(async () => {
      await sendWithProof(
        { keyPair, nonces: new DpopNonces(), fetch },
        htu,
        { method: 'POST', body },
        token,
      )
    })
    expect(warnings).toEqual([])
    expect(subtleSign).toHaveBeenCalledTimes(NODE_MAJOR >= 24 ? 1 : 0)
    expect(proof).not.toBeNull()
    await expect(
      verifyProof(proof!, { htm: 'POST', htu, accessToken: 'token-1' }),
    ).resolves.toMatchObject({ mcp: { method: 'tools/list' } })
  })

  it('signs an extractable key (the file store keeps one) with node:crypto on every Node', async () => {
    const keyPair = await generateProofKeyPair('Ed25519', { extractable: true })
    const subtleSign = vi.spyOn(crypto.subtle, 'sign')
    let proof = ''
    const warnings = await warningsDuring(async () => {
      proof = await createProof(keyPair, { htm: 'POST', htu }, { sign: nodeProofSigning })
    })
    expect(warnings).toEqual([])
    expect(subtleSign).not.toHaveBeenCalled()
    await expect(verifyProof(proof, { htm: 'POST', htu })).resolves.toBeDefined()
  })
})
