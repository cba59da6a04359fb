/**
 * The Node signing path for proofs: the same non-extractable key, signatures every verifier
 * accepts (checked here with core's default Web Crypto verification), and refusal of a key that
 * cannot or must not sign.
 */
import { createProof, verifyProof } from '@callproof/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  DpopNonces,
  generateProofKeyPair,
  nodeProofSigning,
  sendWithProof,
  type TokenSet,
} from '../src/index.js'

const htu = 'https://drive.example.com/mcp'

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
    const es = await generateProofKeyPair('ES256')
    const ed = await generateProofKeyPair('Ed25519')
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

  it('is what sendWithProof signs with: no Web Crypto signature per request', async () => {
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
    await sendWithProof(
      { keyPair, nonces: new DpopNonces(), fetch },
      htu,
      { method: 'POST', body },
      token,
    )
    expect(subtleSign).not.toHaveBeenCalled()
    expect(proof).not.toBeNull()
    await expect(
      verifyProof(proof!, { htm: 'POST', htu, accessToken: 'token-1' }),
    ).resolves.toMatchObject({ mcp: { method: 'tools/list' } })
  })
})
