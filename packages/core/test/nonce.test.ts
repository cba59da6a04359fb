import { describe, expect, it } from 'vitest'
import { CallproofError } from '../src/errors.js'
import { createNonceSource } from '../src/index.js'

const secret = new Uint8Array(32).fill(7)
const otherSecret = new Uint8Array(32).fill(8)
const WINDOW = 30
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0) // the start of a 30 s window

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let now = start
  return {
    clock: () => now,
    set(ms: number) {
      now = ms
    },
  }
}

function flip(nonce: string, index: number): string {
  const c = nonce[index] === 'A' ? 'B' : 'A'
  return nonce.slice(0, index) + c + nonce.slice(index + 1)
}

describe('createNonceSource', () => {
  it('issues a 32-character base64url nonce that changes with the window only', async () => {
    const time = manualClock()
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    const n1 = await source.current()
    expect(n1).toMatch(/^[A-Za-z0-9_-]{32}$/)
    time.set(T0 + WINDOW * 1000 - 1)
    expect(await source.current()).toBe(n1)
    time.set(T0 + WINDOW * 1000)
    expect(await source.current()).not.toBe(n1)
  })

  it('accepts the current and the previous window, and nothing older', async () => {
    const time = manualClock()
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    const nonce = await source.current()
    expect(await source.check(nonce)).toBe(true)
    time.set(T0 + WINDOW * 1000) // next window: the nonce is the previous one
    expect(await source.check(nonce)).toBe(true)
    time.set(T0 + 2 * WINDOW * 1000 - 1)
    expect(await source.check(nonce)).toBe(true)
    time.set(T0 + 2 * WINDOW * 1000) // two windows later: stale
    expect(await source.check(nonce)).toBe(false)
    time.set(T0 + 50 * WINDOW * 1000)
    expect(await source.check(nonce)).toBe(false)
  })

  it('reports when a nonce stops being accepted (the replay bound: at most two windows)', async () => {
    const time = manualClock(T0 + 12_345)
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    const nonce = await source.current()
    const end = source.expiresAt(nonce)
    expect(end).toBe(T0 + 2 * WINDOW * 1000)
    time.set(end! - 1)
    expect(await source.check(nonce)).toBe(true)
    time.set(end!)
    expect(await source.check(nonce)).toBe(false)
    expect(source.expiresAt('garbage')).toBeUndefined()
  })

  it('refuses a nonce from a future window, even one made with the right secret', async () => {
    const time = manualClock(T0 + WINDOW * 1000)
    const future = await createNonceSource({
      secret,
      windowSeconds: WINDOW,
      clock: time.clock,
    }).current()
    time.set(T0)
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    expect(await source.check(future)).toBe(false)
    time.set(T0 + WINDOW * 1000)
    expect(await source.check(future)).toBe(true) // the same nonce once its window has come
  })

  it('refuses a forged nonce: any flipped character, a recomputed window, another secret', async () => {
    const time = manualClock()
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    const nonce = await source.current()
    for (let i = 0; i < nonce.length; i++) {
      expect(await source.check(flip(nonce, i)), `character ${i}`).toBe(false)
    }
    const other = createNonceSource({
      secret: otherSecret,
      windowSeconds: WINDOW,
      clock: time.clock,
    })
    const foreign = await other.current()
    expect(foreign).not.toBe(nonce)
    expect(await source.check(foreign)).toBe(false)
    // The window part of a nonce is public; swapping in another window keeps the old MAC.
    time.set(T0 + 5 * WINDOW * 1000)
    const fresh = await source.current()
    const spliced = Buffer.concat([
      Buffer.from(fresh, 'base64url').subarray(0, 8), // current window
      Buffer.from(nonce, 'base64url').subarray(8), // old MAC
    ]).toString('base64url')
    expect(spliced).toHaveLength(32)
    expect(await source.check(spliced)).toBe(false)
  })

  it('refuses malformed input without throwing', async () => {
    const source = createNonceSource({ secret, windowSeconds: WINDOW, clock: () => T0 })
    const nonce = await source.current()
    const bad: unknown[] = [
      undefined,
      null,
      '',
      'x',
      nonce.slice(1),
      nonce + 'A',
      nonce + '=',
      nonce.slice(0, 31) + '=',
      nonce.slice(0, 31) + '+',
      nonce.slice(0, 31) + '/',
      nonce.slice(0, 31) + ' ',
      ' ' + nonce.slice(1),
      'A'.repeat(32),
      '_'.repeat(32), // window 2^64-1
      nonce.toLowerCase(),
      42,
      { nonce },
      [nonce],
    ]
    for (const value of bad) {
      expect(await source.check(value as string | undefined), JSON.stringify(value)).toBe(false)
    }
  })

  it('lets any instance with the same secret accept another instance’s nonce', async () => {
    const time = manualClock(T0 + 1000)
    const a = createNonceSource({ secret, windowSeconds: WINDOW, clock: time.clock })
    const b = createNonceSource({
      secret: secret.slice(),
      windowSeconds: WINDOW,
      clock: time.clock,
    })
    const fromA = await a.current()
    expect(await b.current()).toBe(fromA)
    expect(await b.check(fromA)).toBe(true)
    time.set(T0 + WINDOW * 1000 + 1000)
    expect(await b.check(fromA)).toBe(true)
    expect(await a.check(await b.current())).toBe(true)
    // A different window length is a different nonce schedule: not accepted across.
    const c = createNonceSource({ secret, windowSeconds: 60, clock: time.clock })
    expect(await c.check(fromA)).toBe(false)
  })

  it('takes a string secret as its UTF-8 bytes', async () => {
    const text = 'a'.repeat(32)
    const fromString = createNonceSource({ secret: text, clock: () => T0 })
    const fromBytes = createNonceSource({
      secret: new TextEncoder().encode(text).buffer,
      clock: () => T0,
    })
    expect(await fromString.current()).toBe(await fromBytes.current())
    expect(fromString.windowSeconds).toBe(30)
  })

  it('does not change when the caller later mutates the secret it passed', async () => {
    const mutable = new Uint8Array(32).fill(7)
    const source = createNonceSource({ secret: mutable, clock: () => T0 })
    const before = await source.current()
    mutable.fill(9)
    expect(await source.current()).toBe(before)
    expect(await source.check(before)).toBe(true)
  })

  it('validates its options at creation', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /options object/],
      [{}, /secret must be/],
      [{ secret: new Uint8Array(31) }, /at least 32 bytes, got 31/],
      [{ secret: 'short' }, /at least 32 bytes, got 5/],
      [{ secret: 12345 }, /secret must be/],
      [{ secret, windowSeconds: 0 }, /windowSeconds/],
      [{ secret, windowSeconds: 1.5 }, /windowSeconds/],
      [{ secret, windowSeconds: 3601 }, /windowSeconds/],
      [{ secret, windowSeconds: Number.NaN }, /windowSeconds/],
      [{ secret, clock: 5 }, /clock/],
    ]
    for (const [options, message] of cases) {
      let error: unknown
      try {
        createNonceSource(options as never)
      } catch (e) {
        error = e
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(CallproofError)
      expect((error as CallproofError).code).toBe('ERR_INVALID_OPTIONS')
      expect((error as Error).message).toMatch(message)
    }
  })

  it('never puts the secret in an error message', () => {
    const leaky = 'do-not-print-me'
    expect(() => createNonceSource({ secret: leaky })).toThrow(/15/)
    try {
      createNonceSource({ secret: leaky })
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(leaky)
    }
  })
})
