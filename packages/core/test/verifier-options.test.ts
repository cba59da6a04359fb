/**
 * createVerifier: opaque tokens (`opaqueTokens`), the replay entry bounded by the nonce window
 * (`NonceSource.expiresAt`), and clocks skewed up to (and beyond) the configured tolerance.
 */
import { describe, expect, it, vi } from 'vitest'
import {
  CallproofError,
  DEFAULT_CLOCK_SKEW_SECONDS,
  MemoryReplayStore,
  createNonceSource,
} from '../src/index.js'
import type { AccessTokenClaims, NonceSource, VerifierOptions } from '../src/index.js'
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

const setup = (extra: Partial<VerifierOptions> = {}) => verifierWith(as.keys, extra).verifier

function request(token: string, proof: string, message?: unknown) {
  const headers = new Headers({ authorization: `DPoP ${token}`, dpop: proof })
  return { method: 'POST', url: RESOURCE, headers, ...(message === undefined ? {} : { message }) }
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

/** Calls `token` with a fresh, correct proof for a read_file call. */
async function call(verifier: ReturnType<typeof setup>, token: string, proofIat = NOW) {
  const message = toolCall()
  return verifier.verify(
    request(token, await proofFor(alice, token, message, { iat: proofIat }), message),
  )
}

describe('opaque tokens (VerifierOptions.opaqueTokens)', () => {
  const OPAQUE = 'opaque-Zm9vYmFyYmF6'
  const claims = (extra: Record<string, unknown> = {}): AccessTokenClaims =>
    ({
      iss: ISSUER,
      sub: 'carol',
      aud: RESOURCE,
      exp: NOW + 300,
      iat: NOW - 5,
      jti: 'opaque-jti-1',
      client_id: 'opaque-client',
      scope: 'drive:read',
      cnf: { jkt: aliceJkt },
      ...extra,
    }) as AccessTokenClaims

  it('is rejected at creation when it is not a function', () => {
    expect(() => setup({ opaqueTokens: 'yes' as never })).toThrow(/opaqueTokens must be a function/)
  })

  it('accepts an opaque token whose looked-up claims pass, with the caller from those claims', async () => {
    const lookup = vi.fn(async () => claims())
    const verifier = setup({ opaqueTokens: lookup })
    const verified = await call(verifier, OPAQUE)
    expect(lookup).toHaveBeenCalledWith(OPAQUE)
    expect(verified.caller).toMatchObject({
      sub: 'carol',
      clientId: 'opaque-client',
      jkt: aliceJkt,
      tokenId: 'opaque-jti-1',
      scopes: ['drive:read'],
    })
  })

  it('is never asked about a JWT', async () => {
    const lookup = vi.fn(async () => claims())
    const verifier = setup({ opaqueTokens: lookup })
    await call(verifier, await as.token(aliceJkt))
    expect(lookup).not.toHaveBeenCalled()
  })

  it('is asked on every call (a revocation it learns of takes effect at once)', async () => {
    let active = true
    const lookup = vi.fn(async () => {
      if (!active) throw new CallproofError('ERR_INVALID_TOKEN', 'introspected token is not active')
      return claims()
    })
    const verifier = setup({ opaqueTokens: lookup })
    await call(verifier, OPAQUE)
    active = false
    await refusedWith(call(verifier, OPAQUE), 'ERR_INVALID_TOKEN', /not active/)
    expect(lookup).toHaveBeenCalledTimes(2)
  })

  it('without opaqueTokens, an opaque token is refused as not a JWT', async () => {
    await refusedWith(call(setup(), OPAQUE), 'ERR_INVALID_TOKEN', /not a compact JWS/)
  })

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an unbound (bearer) token', { cnf: undefined }, /cnf\.jkt/],
    ['a token for another resource', { aud: 'https://other.example/mcp' }, /audience/],
    ['a token from an untrusted issuer', { iss: 'https://evil.example' }, /issuer/],
    ['an expired token', { exp: NOW - 60 }, /expired/],
    ['a token without exp', { exp: undefined }, /no exp/],
    ['a token without sub', { sub: undefined }, /no sub/],
    ['a token without client_id', { client_id: '' }, /no client_id/],
  ])('refuses %s through the same claim checks as a JWT', async (_, extra, reason) => {
    const verifier = setup({ opaqueTokens: async () => claims(extra) })
    await refusedWith(call(verifier, OPAQUE), 'ERR_INVALID_TOKEN', reason)
  })

  it('refuses a proof key other than the one the opaque token is bound to', async () => {
    const mallory = await clientKeys()
    const verifier = setup({ opaqueTokens: async () => claims() })
    const message = toolCall()
    await refusedWith(
      verifier.verify(request(OPAQUE, await proofFor(mallory, OPAQUE, message), message)),
      'ERR_INVALID_PROOF',
      /cnf\.jkt/,
    )
  })

  it('refuses a proof whose ath names another token', async () => {
    const verifier = setup({ opaqueTokens: async () => claims() })
    const message = toolCall()
    const proof = await proofFor(alice, 'another-token', message)
    await refusedWith(verifier.verify(request(OPAQUE, proof, message)), 'ERR_INVALID_PROOF', /ath/)
  })

  it('fails closed (ERR_STORE_UNAVAILABLE) when the lookup itself fails', async () => {
    const verifier = setup({
      opaqueTokens: async () => {
        throw new TypeError('fetch failed')
      },
    })
    const err = await refusedWith(call(verifier, OPAQUE), 'ERR_STORE_UNAVAILABLE')
    expect(err.cause).toBeInstanceOf(TypeError)
  })

  it('refuses claims that are not plain data (ERR_INVALID_TOKEN, never a crash)', async () => {
    const verifier = setup({ opaqueTokens: async () => claims({ extra: () => 1 }) })
    await refusedWith(call(verifier, OPAQUE), 'ERR_INVALID_TOKEN', /not plain data/)
    const notAnObject = setup({ opaqueTokens: async () => 'alice' as never })
    await refusedWith(call(notAnObject, OPAQUE), 'ERR_INVALID_TOKEN', /not an object/)
  })

  it('freezes a copy of the claims, not the lookup’s own object', async () => {
    const own = claims()
    const verified = await call(setup({ opaqueTokens: async () => own }), OPAQUE)
    expect(Object.isFrozen(own)).toBe(false)
    expect(Object.isFrozen(verified.token.claims)).toBe(true)
  })
})

describe('with nonces, the replay entry lives no longer than the nonce (NonceSource.expiresAt)', () => {
  const MAX_AGE = 60
  const SKEW = 5

  async function storedExpiry(nonceEnd: number | undefined, proofIat = NOW) {
    const consume = vi.fn(async () => true)
    const nonce: NonceSource = {
      current: () => 'n-1',
      check: (n) => n === 'n-1',
      expiresAt: () => nonceEnd,
    }
    const verifier = setup({
      replay: { consume },
      nonce,
      proofMaxAgeSeconds: MAX_AGE,
      clockSkewSeconds: SKEW,
    })
    const token = await as.token(aliceJkt)
    const message = toolCall()
    await verifier.verify(
      request(
        token,
        await proofFor(alice, token, message, { nonce: 'n-1', iat: proofIat, jti: 'j-n' }),
        message,
      ),
    )
    expect(consume).toHaveBeenCalledTimes(1)
    return (consume.mock.calls[0] as unknown as [string, number])[1]
  }

  it('stores the nonce expiry + skew when it is earlier than iat + max age + skew', async () => {
    const nonceEnd = NOW_MS + 20_000
    // The skew is added on this path too: the store's clock may be ahead by that much.
    expect(await storedExpiry(nonceEnd)).toBe(nonceEnd + SKEW * 1000)
  })

  it('stores iat + max age + skew when that is earlier than the nonce expiry', async () => {
    const windowEnd = (NOW - 50 + MAX_AGE + SKEW) * 1000
    expect(await storedExpiry(windowEnd + 30_000, NOW - 50)).toBe(windowEnd)
  })

  it('falls back to iat + max age + skew when the nonce source does not know', async () => {
    expect(await storedExpiry(undefined)).toBe((NOW + MAX_AGE + SKEW) * 1000)
  })

  it('with createNonceSource, the stored expiry is the smaller of the two', async () => {
    const source = createNonceSource({
      secret: new Uint8Array(32).fill(7),
      windowSeconds: 10,
      clock,
    })
    const consume = vi.fn(async () => true)
    const verifier = setup({ replay: { consume }, nonce: source })
    const token = await as.token(aliceJkt)
    const nonce = await source.current()
    const message = toolCall()
    await verifier.verify(request(token, await proofFor(alice, token, message, { nonce }), message))
    const stored = (consume.mock.calls[0] as unknown as [string, number])[1]
    const nonceEnd = source.expiresAt(nonce)!
    expect(nonceEnd + 5000).toBeLessThan((NOW + 60 + 5) * 1000)
    expect(stored).toBe(nonceEnd + 5000)
  })

  it('rejects a nonce source whose expiresAt is not a function', () => {
    expect(() =>
      setup({ nonce: { current: () => 'n', check: () => true, expiresAt: 5 as never } }),
    ).toThrow(/expiresAt must be a function/)
  })
})

describe("VerifiedCall.acceptedUntil: until when the verifier accepts the call's token", () => {
  const EXP = NOW + 100

  /** Verifies a fresh proof for `token` at `ms` (the proof's iat is that moment too). */
  async function callAt(v: ReturnType<typeof setup>, token: string, ms: number) {
    return call(v, token, Math.floor(ms / 1000))
  }

  it('is (exp + the configured clockSkewSeconds) * 1000, not the default tolerance', async () => {
    const token = await as.token(aliceJkt, { exp: EXP })
    const verified = await call(setup({ clockSkewSeconds: 7 }), token)
    expect(verified.acceptedUntil).toBe((EXP + 7) * 1000)
  })

  it('uses DEFAULT_CLOCK_SKEW_SECONDS when no tolerance is configured', async () => {
    const token = await as.token(aliceJkt, { exp: EXP })
    const verified = await call(setup(), token)
    expect(verified.acceptedUntil).toBe((EXP + DEFAULT_CLOCK_SKEW_SECONDS) * 1000)
    expect(Object.isFrozen(verified)).toBe(true)
  })

  it('is the moment the verifier starts refusing the token, on a fresh and on a cached path', async () => {
    for (const skew of [0, 7, 30]) {
      const token = await as.token(aliceJkt, { exp: EXP })
      let now = NOW_MS
      const options = { clockSkewSeconds: skew, clock: () => now }
      const cached = setup(options)
      const { acceptedUntil } = await call(cached, token)
      now = acceptedUntil - 1
      await expect(callAt(cached, token, now), `skew ${skew}, cached`).resolves.toBeDefined()
      await expect(callAt(setup(options), token, now), `skew ${skew}, fresh`).resolves.toBeDefined()
      now = acceptedUntil
      await refusedWith(callAt(cached, token, now), 'ERR_INVALID_TOKEN', /expired/)
      await refusedWith(callAt(setup(options), token, now), 'ERR_INVALID_TOKEN', /expired/)
    }
  })
})

describe('a replay store whose clock runs ahead of the verifier (within the skew) still refuses a replay', () => {
  const SKEW = 5
  const STORE_AHEAD_MS = 1000

  /** A verifier on a clock the test moves (`time.now`), and a real memory store 1 s ahead of it. */
  function skewedStore(time: { now: number }, nonce?: NonceSource) {
    const replay = new MemoryReplayStore({ clock: () => time.now + STORE_AHEAD_MS })
    return setup({
      clock: () => time.now,
      replay,
      clockSkewSeconds: SKEW,
      proofMaxAgeSeconds: 60,
      ...(nonce !== undefined && { nonce }),
    })
  }

  it('with nonces: the proof replayed just before its nonce goes stale is refused', async () => {
    const time = { now: NOW_MS }
    // The nonce source runs on the verifier's clock (it is part of the same instance).
    const nonce = createNonceSource({
      secret: new Uint8Array(32).fill(9),
      windowSeconds: 10,
      clock: () => time.now,
    })
    const verifier = skewedStore(time, nonce)
    const token = await as.token(aliceJkt)
    const message = toolCall()
    const current = await nonce.current()
    const proof = await proofFor(alice, token, message, { nonce: current })
    await verifier.verify(request(token, proof, message))
    // Half a second before the nonce goes stale by the verifier's clock: the proof still passes
    // every other check, and the store, 1 s ahead, is already past the nonce's expiry.
    time.now = nonce.expiresAt(current)! - 500
    expect(await nonce.check(current)).toBe(true)
    await refusedWith(verifier.verify(request(token, proof, message)), 'ERR_REPLAY')
  })

  it('without nonces: the proof replayed just before its iat window closes is refused', async () => {
    const time = { now: NOW_MS }
    const verifier = skewedStore(time)
    const token = await as.token(aliceJkt)
    const message = toolCall()
    const proof = await proofFor(alice, token, message)
    await verifier.verify(request(token, proof, message))
    time.now = (NOW + 60) * 1000 - 500
    await refusedWith(verifier.verify(request(token, proof, message)), 'ERR_REPLAY')
  })
})

describe('clock skew up to the configured tolerance works, beyond it fails with a clear reason', () => {
  for (const skew of [5, 30]) {
    describe(`clockSkewSeconds ${skew}, proofMaxAgeSeconds 60`, () => {
      const verifier = () => setup({ clockSkewSeconds: skew, proofMaxAgeSeconds: 60 })

      it('a proof from a client clock ahead by exactly the tolerance verifies; one second more fails', async () => {
        const token = await as.token(aliceJkt)
        await expect(call(verifier(), token, NOW + skew)).resolves.toBeDefined()
        await refusedWith(
          call(verifier(), token, NOW + skew + 1),
          'ERR_INVALID_PROOF',
          new RegExp(
            `iat is too far in the future: ${skew + 1} s ahead \\(clock skew tolerance ${skew} s\\)`,
          ),
        )
      })

      it('a proof as old as the maximum age verifies; one second older fails', async () => {
        const token = await as.token(aliceJkt)
        await expect(call(verifier(), token, NOW - 60)).resolves.toBeDefined()
        await refusedWith(
          call(verifier(), token, NOW - 61),
          'ERR_INVALID_PROOF',
          /iat is too old: 61 s in the past \(at most 60 s allowed\)/,
        )
      })

      it('a token expired by less than the tolerance verifies; expired beyond it fails', async () => {
        const within = await as.token(aliceJkt, { exp: NOW - skew + 1 })
        await expect(call(verifier(), within)).resolves.toBeDefined()
        const beyond = await as.token(aliceJkt, { exp: NOW - skew })
        await refusedWith(call(verifier(), beyond), 'ERR_INVALID_TOKEN', /has expired/)
      })

      it('a token issued by a server clock ahead by the tolerance verifies; beyond it fails', async () => {
        const within = await as.token(aliceJkt, { iat: NOW + skew })
        await expect(call(verifier(), within)).resolves.toBeDefined()
        const beyond = await as.token(aliceJkt, { iat: NOW + skew + 1 })
        await refusedWith(
          call(verifier(), beyond),
          'ERR_INVALID_TOKEN',
          new RegExp(
            `iat is in the future \\(${skew + 1} s ahead, beyond the clock skew tolerance of ${skew} s\\)`,
          ),
        )
      })

      it('a cached token is refused once it has expired beyond the tolerance', async () => {
        let now = NOW_MS
        const v = setup({ clockSkewSeconds: skew, clock: () => now })
        const token = await as.token(aliceJkt, { exp: NOW + 10 })
        await call(v, token)
        now = (NOW + 10 + skew - 1) * 1000
        await expect(call(v, token, NOW + 10 + skew - 1)).resolves.toBeDefined()
        now = (NOW + 10 + skew) * 1000
        await refusedWith(call(v, token, NOW + 10 + skew), 'ERR_INVALID_TOKEN', /expired/)
      })
    })
  }
})
