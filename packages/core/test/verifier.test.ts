/** createVerifier: option validation, the order of checks, every refusal, caching, the brand. */
import type { JWTVerifyGetKey } from 'jose'
import { describe, expect, it, vi } from 'vitest'
import {
  CallproofError,
  MemoryReplayStore,
  UseNonceError,
  bindingFor,
  createVerifier,
  isVerifiedCall,
} from '../src/index.js'
import type { ReplayStore, VerifierOptions } from '../src/index.js'
import {
  ISSUER,
  NOW,
  NOW_MS,
  RESOURCE,
  clientKeys,
  clock,
  issuer,
  proofFor,
  thumbprintOf,
  toolCall,
  verifierWith,
} from './helpers.js'

const as = await issuer()
const alice = await clientKeys()
const aliceJkt = await thumbprintOf(alice)

const setup = (extra: Partial<VerifierOptions> = {}) => verifierWith(as.keys, extra)

function request(
  token: string | undefined,
  proof: string | undefined,
  message?: unknown,
  method = 'POST',
) {
  const headers = new Headers()
  if (token !== undefined) headers.set('authorization', `DPoP ${token}`)
  if (proof !== undefined) headers.set('dpop', proof)
  return {
    method,
    url: 'http://127.0.0.1:9999/mcp',
    headers,
    ...(message === undefined ? {} : { message }),
  }
}

async function refusedWith(promise: Promise<unknown>, code: string, reason?: RegExp) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  expect((err as CallproofError).code).toBe(code)
  if (reason) expect((err as CallproofError).message).toMatch(reason)
  return err as CallproofError
}

describe('createVerifier validates options at creation', () => {
  const good: VerifierOptions = {
    resource: RESOURCE,
    issuers: [ISSUER],
    keys: as.keys,
    replay: new MemoryReplayStore(),
  }
  it.each<[string, Partial<Record<keyof VerifierOptions, unknown>>, RegExp]>([
    ['resource not a URL', { resource: 'drive' }, /resource drive is not an absolute URL/],
    ['resource not http(s)', { resource: 'ftp://x/mcp' }, /http\(s\)/],
    ['resource with query', { resource: `${RESOURCE}?a=1` }, /query or fragment/],
    ['resource with fragment', { resource: `${RESOURCE}#x` }, /query or fragment/],
    ['no issuers', { issuers: [] }, /issuers/],
    ['an empty issuer', { issuers: [''] }, /issuer/],
    ['keys not a function', { keys: {} }, /keys/],
    ['no replay store', { replay: undefined }, /replay/],
    ['an unknown proof algorithm', { algorithms: ['HS256'] }, /proof algorithm HS256/],
    ['empty proof algorithms', { algorithms: [] }, /algorithms/],
    ['token algorithm none', { tokenAlgorithms: ['none'] }, /token algorithm none/],
    ['token algorithm HS256', { tokenAlgorithms: ['ES256', 'HS256'] }, /HS256/],
    ['proofMaxAgeSeconds 0', { proofMaxAgeSeconds: 0 }, /proofMaxAgeSeconds/],
    ['clockSkewSeconds negative', { clockSkewSeconds: -1 }, /clockSkewSeconds/],
    ['clock not a function', { clock: 5 }, /clock/],
    ['nonce without check', { nonce: { current: () => 'x' } }, /nonce/],
    ['allowMissingTyp not boolean', { allowMissingTyp: 'yes' }, /allowMissingTyp/],
    ['tokenCacheSize 0', { tokenCacheSize: 0 }, /tokenCacheSize/],
  ])('refuses %s', (_, patch, message) => {
    const err = (() => {
      try {
        createVerifier({ ...good, ...patch } as VerifierOptions)
      } catch (e) {
        return e
      }
    })()
    expect(err).toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
    expect((err as Error).message).toMatch(message)
  })
  it('accepts a good configuration', () => {
    expect(() => createVerifier(good)).not.toThrow()
    expect(() => createVerifier({ ...good, resource: 'http://127.0.0.1:3000/mcp' })).not.toThrow()
  })
})

describe('verify', () => {
  it('accepts a call and returns the verified caller, binding and the very message', async () => {
    const { verifier } = setup()
    const token = await as.token(aliceJkt, { acr: 'urn:callproof:acr:mfa', auth_time: NOW - 30 })
    const message = toolCall()
    const call = await verifier.verify(
      request(token, await proofFor(alice, token, message), message),
    )
    expect(call.caller).toMatchObject({
      sub: 'alice',
      clientId: 'client-1',
      jkt: aliceJkt,
      acr: 'urn:callproof:acr:mfa',
      authTime: NOW - 30,
      scopes: ['drive:read', 'drive:write'],
    })
    expect(call.caller.tokenId).toMatch(/^tok-/)
    expect(call.binding).toEqual(await bindingFor(message))
    expect(call.message).toBe(message)
    expect(isVerifiedCall(call)).toBe(true)
    expect(Object.isFrozen(call)).toBe(true)
  })

  it('accepts GET and DELETE without a message and without an mcp claim', async () => {
    const { verifier } = setup()
    const token = await as.token(aliceJkt)
    for (const method of ['GET', 'DELETE']) {
      const call = await verifier.verify(
        request(token, await proofFor(alice, token, undefined, { htm: method }), undefined, method),
      )
      expect(call.binding).toBeUndefined()
    }
  })

  it('a hand-built look-alike is not a VerifiedCall', () => {
    expect(isVerifiedCall({ caller: { sub: 'alice' } })).toBe(false)
    expect(isVerifiedCall(null)).toBe(false)
  })

  describe('refuses', () => {
    it('a request without credentials: ERR_NO_CREDENTIALS', async () => {
      const { verifier } = setup()
      await refusedWith(verifier.verify(request(undefined, undefined)), 'ERR_NO_CREDENTIALS')
      const blank = request(undefined, undefined)
      blank.headers.set('authorization', '  ')
      await refusedWith(verifier.verify(blank), 'ERR_NO_CREDENTIALS')
    })

    it('the Bearer scheme, even with a valid proof: ERR_BEARER_NOT_ALLOWED', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const message = toolCall()
      const req = request(undefined, await proofFor(alice, token, message), message)
      req.headers.set('authorization', `Bearer ${token}`)
      await refusedWith(verifier.verify(req), 'ERR_BEARER_NOT_ALLOWED')
      req.headers.set('authorization', 'bearer')
      await refusedWith(verifier.verify(req), 'ERR_BEARER_NOT_ALLOWED')
    })

    it('another scheme, a malformed header, or two Authorization values: ERR_INVALID_TOKEN', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      for (const value of [
        'Basic YTpi',
        `DPoP`,
        `DPoP ${token} extra`,
        `DPoP ${token}, DPoP ${token}`,
        'DPoP a"b',
      ]) {
        const req = request(undefined, 'x.y.z')
        req.headers.set('authorization', value)
        await refusedWith(verifier.verify(req), 'ERR_INVALID_TOKEN', /Authorization/)
      }
    })

    it('a bad token before looking at the proof', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt, { aud: 'https://other.example/mcp' })
      await refusedWith(verifier.verify(request(token, 'not-a-proof')), 'ERR_INVALID_TOKEN', /aud/)
      const unbound = await as.mint({
        iss: ISSUER,
        sub: 'a',
        aud: RESOURCE,
        client_id: 'c',
        jti: 'j',
        iat: NOW,
        exp: NOW + 60,
      })
      await refusedWith(
        verifier.verify(request(unbound, 'not-a-proof')),
        'ERR_INVALID_TOKEN',
        /cnf\.jkt/,
      )
    })

    it('a token without proof, and several proofs', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const message = toolCall()
      await refusedWith(
        verifier.verify(request(token, undefined, message)),
        'ERR_INVALID_PROOF',
        /no DPoP proof/,
      )
      const proof = await proofFor(alice, token, message)
      const req = request(token, proof, message)
      req.headers.append('dpop', proof)
      await refusedWith(verifier.verify(req), 'ERR_INVALID_PROOF', /exactly one/)
    })

    it('a proof for another method or another resource', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const message = toolCall()
      await refusedWith(
        verifier.verify(
          request(token, await proofFor(alice, token, message, { htm: 'PUT' }), message),
        ),
        'ERR_INVALID_PROOF',
        /htm/,
      )
      await refusedWith(
        verifier.verify(
          request(
            token,
            await proofFor(alice, token, message, { htu: 'https://other.example/mcp' }),
            message,
          ),
        ),
        'ERR_INVALID_PROOF',
        /htu/,
      )
    })

    it('a stale or future proof', async () => {
      const { verifier } = setup({ proofMaxAgeSeconds: 30, clockSkewSeconds: 2 })
      const token = await as.token(aliceJkt)
      const message = toolCall()
      await refusedWith(
        verifier.verify(
          request(token, await proofFor(alice, token, message, { iat: NOW - 31 }), message),
        ),
        'ERR_INVALID_PROOF',
        /past/,
      )
      await refusedWith(
        verifier.verify(
          request(token, await proofFor(alice, token, message, { iat: NOW + 3 }), message),
        ),
        'ERR_INVALID_PROOF',
        /future/,
      )
    })

    it('a proof made for another token of the same key (ath)', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const other = await as.token(aliceJkt)
      const message = toolCall()
      await refusedWith(
        verifier.verify(request(token, await proofFor(alice, other, message), message)),
        'ERR_INVALID_PROOF',
        /ath/,
      )
    })

    it("another caller's token with one's own key (jkt ≠ cnf.jkt)", async () => {
      const { verifier } = setup()
      const mallory = await clientKeys()
      const alicesToken = await as.token(aliceJkt)
      const message = toolCall()
      await refusedWith(
        verifier.verify(
          request(alicesToken, await proofFor(mallory, alicesToken, message), message),
        ),
        'ERR_INVALID_PROOF',
        /cnf\.jkt/,
      )
    })

    it('a proof without the current nonce, answering with the nonce to use', async () => {
      const nonce = {
        current: vi.fn(async () => 'n-2'),
        check: vi.fn((n: string | undefined) => n === 'n-2'),
      }
      const { verifier } = setup({ nonce })
      const token = await as.token(aliceJkt)
      const message = toolCall()
      for (const proof of [
        await proofFor(alice, token, message),
        await proofFor(alice, token, message, { nonce: 'n-1' }),
      ]) {
        const err = await refusedWith(
          verifier.verify(request(token, proof, message)),
          'ERR_USE_NONCE',
        )
        expect(err).toBeInstanceOf(UseNonceError)
        expect((err as UseNonceError).nonce).toBe('n-2')
      }
      await expect(
        verifier.verify(
          request(token, await proofFor(alice, token, message, { nonce: 'n-2' }), message),
        ),
      ).resolves.toBeDefined()
    })

    it('changed arguments, another tool, another id type, a missing or unexpected mcp claim', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const signed = toolCall('read_file', { path: 'a.txt' })
      const cases: Array<[unknown, unknown, string]> = [
        [signed, toolCall('read_file', { path: 'b.txt' }), 'POST'],
        [signed, toolCall('delete_file', { path: 'a.txt' }), 'POST'],
        [{ jsonrpc: '2.0', id: 1, result: {} }, { jsonrpc: '2.0', id: '1', result: {} }, 'POST'],
      ]
      for (const [forProof, sent, method] of cases) {
        const proof = await proofFor(alice, token, forProof)
        await refusedWith(
          verifier.verify(request(token, proof, sent, method)),
          'ERR_BINDING_MISMATCH',
        )
      }
      // POST whose proof has no mcp claim at all
      const bare = await proofFor(alice, token, undefined)
      await refusedWith(
        verifier.verify(request(token, bare, signed)),
        'ERR_BINDING_MISMATCH',
        /none/,
      )
      // GET/DELETE whose proof carries an mcp claim
      const withMcp = await proofFor(alice, token, signed, { htm: 'GET' })
      await refusedWith(
        verifier.verify(request(token, withMcp, undefined, 'GET')),
        'ERR_BINDING_MISMATCH',
        /no message/,
      )
    })

    it('a batch body', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const proof = await proofFor(alice, token, undefined, { mcp: { method: 'ping' } })
      await refusedWith(
        verifier.verify(request(token, proof, [toolCall()])),
        'ERR_BATCH_NOT_SUPPORTED',
      )
    })

    it('a replayed proof', async () => {
      const { verifier } = setup()
      const token = await as.token(aliceJkt)
      const message = toolCall()
      const proof = await proofFor(alice, token, message)
      await verifier.verify(request(token, proof, message))
      await refusedWith(verifier.verify(request(token, proof, message)), 'ERR_REPLAY')
    })

    it('a replay store that is full or down: fail closed', async () => {
      const token = await as.token(aliceJkt)
      const message = toolCall()
      const full = setup({ replay: new MemoryReplayStore({ maxEntries: 1, clock }) })
      await full.verifier.verify(request(token, await proofFor(alice, token, message), message))
      await refusedWith(
        full.verifier.verify(request(token, await proofFor(alice, token, message), message)),
        'ERR_REPLAY_STORE_FULL',
      )
      const down: ReplayStore = { consume: async () => Promise.reject(new Error('ECONNREFUSED')) }
      const err = await refusedWith(
        setup({ replay: down }).verifier.verify(
          request(token, await proofFor(alice, token, message), message),
        ),
        'ERR_STORE_UNAVAILABLE',
      )
      expect(err.cause).toBeInstanceOf(Error)
    })
  })

  it('records the replay key dpop:<jkt>:<jti> until iat + max age + skew, and only for accepted proofs', async () => {
    const consume = vi.fn(async () => true)
    const { verifier } = setup({ replay: { consume }, proofMaxAgeSeconds: 60, clockSkewSeconds: 5 })
    const token = await as.token(aliceJkt)
    const message = toolCall()
    await refusedWith(
      verifier.verify(request(token, await proofFor(alice, token, toolCall('x')), message)),
      'ERR_BINDING_MISMATCH',
    )
    expect(consume).not.toHaveBeenCalled()
    await verifier.verify(
      request(
        token,
        await proofFor(alice, token, message, { jti: 'jti-9', iat: NOW - 3 }),
        message,
      ),
    )
    // The entry is counted against the verified caller (its subject's and client's quotas).
    expect(consume).toHaveBeenCalledWith(`dpop:${aliceJkt}:jti-9`, (NOW - 3 + 65) * 1000, {
      sub: 'alice',
      clientId: 'client-1',
    })
  })

  it('checks the token once, then trusts the cache until exp, re-checking exp every time', async () => {
    let now = NOW_MS
    const keys = vi.fn(as.keys) as unknown as JWTVerifyGetKey
    const { verifier } = setup({ keys, clock: () => now, clockSkewSeconds: 0 })
    const token = await as.token(aliceJkt, { exp: NOW + 60 })
    for (let i = 0; i < 3; i++) {
      const message = toolCall('read_file', { i })
      await verifier.verify(request(token, await proofFor(alice, token, message), message))
    }
    expect(keys).toHaveBeenCalledTimes(1)
    now = (NOW + 60) * 1000
    const message = toolCall()
    await refusedWith(
      verifier.verify(
        request(token, await proofFor(alice, token, message, { iat: NOW + 60 }), message),
      ),
      'ERR_INVALID_TOKEN',
      /expired/,
    )
  })

  it('does not cache a refused token', async () => {
    const keys = vi.fn(as.keys) as unknown as JWTVerifyGetKey
    const { verifier } = setup({ keys })
    const token = await as.token(aliceJkt, { aud: 'https://other.example' })
    await refusedWith(verifier.verify(request(token, 'x')), 'ERR_INVALID_TOKEN')
    await refusedWith(verifier.verify(request(token, 'x')), 'ERR_INVALID_TOKEN')
    expect(keys).toHaveBeenCalledTimes(2)
  })
})
