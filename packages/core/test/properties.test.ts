/** Property tests (fast-check): invariants that must hold for any input, not only the examples. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CallproofError,
  InsufficientScopeError,
  argsDigest,
  bindingFor,
  parseWwwAuthenticate,
  toHttpAnswer,
} from '../src/index.js'

function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i))
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
    entries.sort(
      (a, b) =>
        ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) || (seed % 2 ? 1 : -1),
    )
    return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, seed + 1)]))
  }
  return value
}

describe('properties', () => {
  it('argsDigest ignores key order and survives a JSON round trip', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.integer(), async (value, seed) => {
        const wire = JSON.parse(JSON.stringify(shuffleKeys(value, seed)))
        expect(await argsDigest(wire)).toBe(await argsDigest(value))
      }),
      { numRuns: 200 },
    )
  })

  it('bindingFor never throws anything but a CallproofError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await bindingFor(value).catch((e: unknown) => expect(e).toBeInstanceOf(CallproofError))
      }),
      { numRuns: 300 },
    )
  })

  it('every challenge value round-trips through the header and parser, or is made header-safe', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.array(fc.stringMatching(/^[!#-[\]-~]+$/), { minLength: 1, maxLength: 4 }),
        (url, scopes) => {
          const answer = toHttpAnswer(new InsufficientScopeError(scopes), {
            resourceMetadata: url,
            algs: ['ES256'],
          })
          const header = answer.headers['www-authenticate']!
          expect(() => new Headers({ 'www-authenticate': header })).not.toThrow()
          const [challenge, ...rest] = parseWwwAuthenticate(header)
          expect(rest).toEqual([])
          expect(challenge!.params.scope).toBe(scopes.join(' '))
          expect(challenge!.params.resource_metadata).toBe(url.replace(/[^\x20-\x7e]/g, '?'))
        },
      ),
      { numRuns: 300 },
    )
  })
})
