/** The synchronous SHA-256 (@noble/hashes, as core uses it) against FIPS 180-4 examples and Web Crypto. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sha256 } from '../src/encoding.js'

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
const utf8 = (s: string) => new TextEncoder().encode(s)
const subtle = async (b: Uint8Array) =>
  hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>)))

describe('sha256', () => {
  it.each([
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
    [
      'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
      'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
    ],
  ])('FIPS 180-4 example %j', (input, digest) => {
    expect(hex(sha256(utf8(input)))).toBe(digest)
  })

  it('one million "a"', () => {
    expect(hex(sha256(new Uint8Array(1_000_000).fill(0x61)))).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    )
  })

  it('equals Web Crypto at every padding boundary', async () => {
    for (let n = 0; n <= 260; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n))
      expect(hex(sha256(bytes)), `length ${n}`).toBe(await subtle(bytes))
    }
  })

  it('equals Web Crypto on random inputs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), async (bytes) => {
        expect(hex(sha256(bytes))).toBe(await subtle(bytes))
      }),
      { numRuns: 300 },
    )
  })
})
