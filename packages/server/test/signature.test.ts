/**
 * The server's proof signature check on Node (`node:crypto`, synchronous): it answers exactly as
 * Web Crypto does, the middleware uses it for every proof, and a forged signature is refused
 * through the whole request path.
 */
import { KeyObject, generateKeyPairSync, sign, verify } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { Hono } from 'hono'
import { createProof, parseWwwAuthenticate } from '@callproof/core'
import { createCallproof, createToolRegistry } from '../src/index.js'
import { adaptiveProofVerification, nodeProofVerification } from '../src/signature.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

const encoder = new TextEncoder()

async function keyPair(alg: 'ES256' | 'EdDSA'): Promise<CryptoKeyPair> {
  const params = alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' }
  return (await crypto.subtle.generateKey(params, false, ['sign', 'verify'])) as CryptoKeyPair
}

async function webSign(keys: CryptoKeyPair, alg: 'ES256' | 'EdDSA', data: Uint8Array) {
  const params = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' }
  return new Uint8Array(await crypto.subtle.sign(params, keys.privateKey, data as BufferSource))
}

describe('nodeProofVerification', () => {
  it('accepts what Web Crypto signed and refuses another message, signature or key', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const keys = await keyPair(alg)
      const other = await keyPair(alg)
      const data = encoder.encode('header.payload')
      const signature = await webSign(keys, alg, data)
      expect(nodeProofVerification(data, signature, keys.publicKey, alg)).toBe(true)
      expect(
        nodeProofVerification(encoder.encode('header.payloaD'), signature, keys.publicKey, alg),
      ).toBe(false)
      const flipped = signature.slice()
      flipped[10]! ^= 1
      expect(nodeProofVerification(data, flipped, keys.publicKey, alg)).toBe(false)
      expect(nodeProofVerification(data, signature, other.publicKey, alg)).toBe(false)
      expect(nodeProofVerification(data, new Uint8Array(64), keys.publicKey, alg)).toBe(false)
    }
  })
})

describe('nodeProofVerification refuses a key that does not fit alg', () => {
  it('an EC key under EdDSA (which node:crypto would check as DER ECDSA), an Ed25519 key under ES256', async () => {
    const data = encoder.encode('header.payload')
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const ecPublic = await crypto.subtle.importKey(
      'jwk',
      ec.publicKey.export({ format: 'jwk' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['verify'],
    )
    const der = sign('sha256', data, ec.privateKey) // DER, not the 64-byte JWS form
    // The hazard: asked with a null digest, node:crypto picks one for an EC key and accepts DER.
    expect(verify(null, data, KeyObject.from(ecPublic), der)).toBe(true)
    expect(() => nodeProofVerification(data, der, ecPublic, 'EdDSA')).toThrow(/Ed25519/)
    expect(() => nodeProofVerification(data, der, ecPublic, 'Ed25519')).toThrow(/Ed25519/)
    const ed = await keyPair('EdDSA')
    const edSignature = await webSign(ed, 'EdDSA', data)
    expect(() => nodeProofVerification(data, edSignature, ed.publicKey, 'ES256')).toThrow(/P-256/)
  })
})

describe('nodeProofVerification with a key node:crypto must not take', () => {
  it('checks a non-extractable public key with Web Crypto instead, with the same answers', async () => {
    const keys = await keyPair('ES256')
    const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey)
    const sealed = await crypto.subtle.importKey(
      'jwk',
      jwk,
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    )
    const data = encoder.encode('header.payload')
    const signature = await webSign(keys, 'ES256', data)
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      await expect(nodeProofVerification(data, signature, sealed, 'ES256')).resolves.toBe(true)
      await expect(
        nodeProofVerification(encoder.encode('header.payloaD'), signature, sealed, 'ES256'),
      ).resolves.toBe(false)
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    // Node 24 warns (DEP0204) when a non-extractable key is handed to node:crypto.
    expect(warnings.map((w) => w.message)).toEqual([])
  })
})

describe('the middleware checks every proof signature with it', () => {
  let issuer: TestIssuer
  let alice: ClientKey
  let run: Running
  let resource = ''
  const ran: string[] = []

  beforeAll(async () => {
    issuer = await startIssuer()
    alice = await clientKey()
    const tools = createToolRegistry({ name: 'test', version: '0.0.0' })
    tools.register('whoami', { policy: { public: true } }, () => {
      ran.push('whoami')
      return { content: [{ type: 'text', text: 'alice' }] }
    })
    run = await listen((origin) => {
      resource = `${origin}/mcp`
      const app = new Hono()
      createCallproof({ resource, issuers: issuer.issuer, tools }).mount(app)
      return app
    })
  })
  afterAll(async () => {
    await run.close()
    await issuer.close()
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('once the token is cached, a call needs no Web Crypto verification at all', async () => {
    const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    const call = async () =>
      fetch(
        resource,
        await provenRequest(resource, { token, key: alice, message: toolCall('whoami') }),
      )
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      expect((await call()).status).toBe(200)
      // An event loop with time to spare: the default (adaptive) check moves work to Web Crypto's
      // thread pool only while the loop is saturated, which this test's own setup may have been.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const subtleVerify = vi.spyOn(crypto.subtle, 'verify')
      expect((await call()).status).toBe(200)
      expect(subtleVerify).not.toHaveBeenCalled()
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    // The proof key core imports is one node:crypto may take without a deprecation (DEP0204).
    expect(warnings.map((w) => w.message)).toEqual([])
  })

  it('refuses a proof whose signature was lifted from another proof of the same key', async () => {
    const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    const message = toolCall('whoami')
    const request = await provenRequest(resource, { token, key: alice, message })
    const headers = request.headers as Record<string, string>
    const other = await createProof(alice.keyPair, {
      htm: 'POST',
      htu: resource,
      accessToken: token,
    })
    const [h, p] = headers['dpop']!.split('.')
    headers['dpop'] = `${h!}.${p!}.${other.split('.')[2]!}`
    const before = ran.length
    const response = await fetch(resource, request)
    expect(response.status).toBe(401)
    const [challenge] = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')
    expect(challenge?.params['error']).toBe('invalid_dpop_proof')
    expect(challenge?.params['error_description']).toMatch(/signature/)
    expect(ran.length).toBe(before)
  })

  it("proofSignatures: 'web-crypto' checks them with Web Crypto instead; other values are refused", async () => {
    const tools = createToolRegistry({ name: 'test', version: '0.0.0' })
    tools.register('whoami', { policy: { public: true } }, () => ({
      content: [{ type: 'text', text: 'alice' }],
    }))
    let webResource = ''
    const web = await listen((origin) => {
      webResource = `${origin}/mcp`
      const app = new Hono()
      createCallproof({
        resource: webResource,
        issuers: issuer.issuer,
        tools,
        proofSignatures: 'web-crypto',
      }).mount(app)
      return app
    })
    try {
      const token = await issuer.mint({ aud: webResource, cnf: { jkt: alice.jkt } })
      const call = async () =>
        fetch(
          webResource,
          await provenRequest(webResource, { token, key: alice, message: toolCall('whoami') }),
        )
      expect((await call()).status).toBe(200)
      const subtleVerify = vi.spyOn(crypto.subtle, 'verify')
      expect((await call()).status).toBe(200)
      expect(subtleVerify).toHaveBeenCalledTimes(1)
    } finally {
      await web.close()
    }
    expect(() =>
      createCallproof({
        resource: 'http://127.0.0.1:1/mcp',
        issuers: issuer.issuer,
        tools,
        proofSignatures: 'openssl' as never,
      }),
    ).toThrow(/proofSignatures must be 'node:crypto' or 'web-crypto'/)
  })
})

describe('adaptiveProofVerification (the default)', () => {
  /** Keeps the event loop busy for `ms`: a saturated loop, as under load. */
  const burn = (ms: number) => {
    const end = performance.now() + ms
    while (performance.now() < end);
  }

  it('checks on the event loop while it has time to spare, and spreads checks over the thread pool while it is saturated', async () => {
    const keys = await keyPair('ES256')
    const exported = await crypto.subtle.exportKey('jwk', keys.publicKey)
    const publicKey = await crypto.subtle.importKey(
      'jwk',
      exported,
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['verify'],
    )
    const data = encoder.encode('header.payload')
    const signature = await webSign(keys, 'ES256', data)
    const forged = signature.slice()
    forged[0]! ^= 1
    const check = adaptiveProofVerification()
    const subtleVerify = vi.spyOn(crypto.subtle, 'verify')

    // Idle: synchronous answers, no Web Crypto.
    expect(check(data, signature, publicKey, 'ES256')).toBe(true)
    expect(check(data, forged, publicKey, 'ES256')).toBe(false)
    expect(subtleVerify).not.toHaveBeenCalled()

    // Saturated for a whole sample window: the next check goes to Web Crypto (one per spare
    // core at a time), the others stay on the loop; the answers are the same.
    burn(60)
    const spare = Math.max(0, availableParallelism() - 1)
    const answers = [
      check(data, signature, publicKey, 'ES256'),
      check(data, forged, publicKey, 'ES256'),
    ]
    expect(await Promise.all(answers)).toEqual([true, false])
    expect(subtleVerify).toHaveBeenCalledTimes(Math.min(1, spare))
    expect(answers.filter((a) => a instanceof Promise)).toHaveLength(Math.min(1, spare))
  })
})
