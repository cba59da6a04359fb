/**
 * Core-level fuzzing (fast-check): the argument digest is a function of the JCS-canonical
 * arguments and nothing else, and no single-claim (or header) mutation of a valid proof verifies.
 * Bounded in runs and in time (`interruptAfterTimeLimit`).
 */
import fc from 'fast-check'
import canonicalize from 'canonicalize'
import { base64url } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  CallproofError,
  MemoryReplayStore,
  argsDigest,
  bindingFor,
  createVerifier,
  verifyProof,
} from '../src/index.js'
import {
  NOW,
  RESOURCE,
  clientKeys,
  clock,
  issuer,
  publicJwk,
  signRaw,
  thumbprintOf,
} from './helpers.js'

const BUDGET_MS = 4000

/**
 * Replays a reported failure: `FUZZ_SEED=<seed> [FUZZ_PATH=<path>] npx vitest run --project
 * @callproof/core test/fuzz -t '<test name>'` (fast-check prints both on failure). Unset, every
 * run draws a fresh seed, which is the point of fuzzing in CI.
 */
const replay: fc.Parameters<unknown> =
  process.env.FUZZ_SEED === undefined
    ? {}
    : {
        seed: Number(process.env.FUZZ_SEED),
        ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
      }

/** The same value with every object's members in another order (a seeded permutation). */
function reorder(value: unknown, seeds: number[], depth = 0): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, seeds, depth + 1))
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
    const seed = seeds[depth % Math.max(1, seeds.length)] ?? 0
    // Fisher–Yates driven by the seed: every permutation is reachable.
    for (let i = entries.length - 1; i > 0; i--) {
      const j = (seed * (i + 7) + i * 31) % (i + 1)
      ;[entries[i], entries[j]] = [entries[j]!, entries[i]!]
    }
    const out: Record<string, unknown> = {}
    for (const [k, v] of entries) {
      Object.defineProperty(out, k, {
        value: reorder(v, seeds, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  }
  return value
}

/**
 * Serialise a JSON value the way a sloppy client might (any whitespace, \u escapes for any
 * character, other spellings of the same number) so the text differs but the JSON value does not.
 * Every spelling must itself be JSON (RFC 8259): the property below tests the digest, not
 * `JSON.parse`, so a generator that writes invalid JSON is a test bug (e.g. `00E-1` for 0 once
 * did: RFC 8259 §6 forbids leading zeros); the generator's own test below checks every number
 * spelling.
 */
function sloppyJson(value: unknown, choices: number[]): string {
  let n = 0
  const pick = (k: number) => (choices[n++ % choices.length] ?? 0) % k
  const ws = () => [' ', '', '\n', '\t', '\r\n  '][pick(5)]!
  const escape = (code: number) => {
    const hex = code.toString(16).padStart(4, '0')
    return `\\u${pick(2) ? hex : hex.toUpperCase()}`
  }
  const str = (s: string) =>
    '"' +
    [...s]
      .map((ch) => {
        const code = ch.codePointAt(0)!
        if (ch === '"' || ch === '\\' || code < 0x20) return JSON.stringify(ch).slice(1, -1)
        if (ch === '/' && pick(2) === 0) return '\\/'
        if (pick(3) !== 0) return ch
        // Outside the BMP, JSON escapes the UTF-16 surrogate pair (RFC 8259 §7).
        if (code > 0xffff) return escape(ch.charCodeAt(0)) + escape(ch.charCodeAt(1))
        return escape(code)
      })
      .join('') +
    '"'
  const num = (x: number) => {
    const spellings = numberSpellings(x)
    return spellings[pick(spellings.length)]!
  }
  const walk = (v: unknown): string => {
    if (v === null) return 'null'
    if (typeof v === 'boolean') return String(v)
    if (typeof v === 'number') return num(v)
    if (typeof v === 'string') return str(v)
    if (Array.isArray(v)) return `[${ws()}${v.map((x) => walk(x)).join(`${ws()},${ws()}`)}${ws()}]`
    const members = Object.entries(v as Record<string, unknown>).map(
      ([k, x]) => `${ws()}${str(k)}${ws()}:${ws()}${walk(x)}`,
    )
    return `{${members.join(',')}${ws()}}`
  }
  return walk(value)
}

/** JSON texts (RFC 8259 §6) for the finite number `x`, all parsing back to `x` exactly. */
function numberSpellings(x: number): string[] {
  if (Object.is(x, -0)) return ['-0', '0', '-0.0', '0e5', '-0E-0']
  if (Number.isInteger(x) && Math.abs(x) < 1e15) {
    // "x with a zero appended, times 10^-1": 0 has no such spelling ("00" has a leading zero).
    const tenfold = x === 0 ? '0' : `${x}0`
    return [String(x), `${x}.0`, `${x}e0`, `${tenfold}E-1`, `${x}.000`, `${x}E+00`]
  }
  // Shortest round-trip forms: both name exactly x (ECMA-262 Number::toString, toExponential()).
  return [String(x), String(x).toUpperCase(), x.toExponential()]
}

describe('fuzz: argument digest (RFC 8785)', () => {
  it('is stable under key reordering at every depth', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue(),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        async (v, seeds) => {
          expect(await argsDigest(reorder(v, seeds))).toBe(await argsDigest(v))
        },
      ),
      { ...replay, numRuns: 1000, interruptAfterTimeLimit: BUDGET_MS },
    )
  })

  it('(generator self-check) every number spelling is JSON and names the same number', () => {
    const edges = [0, -0, 1, -1, 7, -123, 1e15 - 1, -(1e15 - 1), 1e15, 2 ** 53, 0.5, -1.5e-7, 1e21]
    const check = (x: number) => {
      for (const text of numberSpellings(x)) {
        const parsed = JSON.parse(text) as number
        // JCS writes -0 as 0 (RFC 8785 §3.2.2.3): every spelling of zero is the same value.
        if (x === 0) expect(canonicalize(parsed), text).toBe('0')
        else expect(parsed, `${text} for ${x}`).toBe(x)
      }
    }
    for (const x of [...edges, Number.MAX_VALUE, Number.MIN_VALUE]) check(x)
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => check(x)),
      { ...replay, numRuns: 2000 },
    )
  })

  it('is equal for JCS-equal inputs however they were spelled on the wire', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Any Unicode (well-formed: lone surrogates are a separate, refused case).
        fc.jsonValue({ stringUnit: 'grapheme' }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
        async (v, choices) => {
          const text = sloppyJson(v, choices)
          let parsed: unknown
          expect(
            () => (parsed = JSON.parse(text)),
            `generator wrote invalid JSON: ${text}`,
          ).not.toThrow()
          expect(canonicalize(parsed)).toBe(canonicalize(v))
          expect(await argsDigest(parsed), text).toBe(await argsDigest(v))
        },
      ),
      { ...replay, numRuns: 1000, interruptAfterTimeLimit: BUDGET_MS },
    )
  })

  it('is distinct for distinct arguments, and is SHA-256 of the canonical form', async () => {
    const digest = async (s: string) =>
      base64url.encode(
        new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s))),
      )
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.jsonValue(), async (a, b) => {
        const [da, db] = await Promise.all([argsDigest(a), argsDigest(b)])
        // undefined/null-free JSON values: the canonical text is defined for both.
        expect(da).toBe(await digest(canonicalize(a ?? {})!))
        if (canonicalize(a ?? {}) === canonicalize(b ?? {})) expect(da).toBe(db)
        else expect(da).not.toBe(db)
      }),
      { ...replay, numRuns: 1000, interruptAfterTimeLimit: BUDGET_MS },
    )
  })

  it('tells apart arguments that differ in one leaf (the case a swap under a proof needs)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }),
        fc.nat(),
        fc.jsonValue({ maxDepth: 1 }),
        async (args, i, replacement) => {
          const keys = Object.keys(args)
          const key = keys[i % keys.length]!
          fc.pre(canonicalize(args[key]) !== canonicalize(replacement))
          const changed = { ...args }
          Object.defineProperty(changed, key, {
            value: replacement,
            enumerable: true,
            writable: true,
            configurable: true,
          })
          expect(await argsDigest(changed)).not.toBe(await argsDigest(args))
        },
      ),
      { ...replay, numRuns: 1000, interruptAfterTimeLimit: BUDGET_MS },
    )
  })
})

describe('fuzz: proofs — every single-claim mutation of a valid proof is refused', () => {
  let keys: CryptoKeyPair
  let otherKeys: CryptoKeyPair
  let jwk: Record<string, unknown>
  let iss: Awaited<ReturnType<typeof issuer>>
  let token: string
  let ath: string
  const message = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'delete_file', arguments: { path: 'README.md' } },
  }
  let mcp: unknown

  beforeAll(async () => {
    keys = await clientKeys()
    otherKeys = await clientKeys()
    jwk = (await publicJwk(keys)) as Record<string, unknown>
    iss = await issuer()
    token = await iss.token(await thumbprintOf(keys))
    ath = base64url.encode(
      new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))),
    )
    mcp = await bindingFor(message)
  })

  const honest = () => ({
    header: { typ: 'dpop+jwt', alg: 'ES256', jwk } as Record<string, unknown>,
    claims: {
      jti: crypto.randomUUID(),
      htm: 'POST',
      htu: RESOURCE,
      iat: NOW,
      ath,
      nonce: 'n-1',
      mcp,
    } as Record<string, unknown>,
  })

  /** Could `value` be a valid `claim`? Those values are not mutations; they are skipped. */
  function couldBeValid(claim: string, value: unknown, honestValue: unknown): boolean {
    if (canonicalize(value) === canonicalize(honestValue)) return true
    if (claim === 'jti') return typeof value === 'string' && value.length > 0 && value.length <= 512
    if (claim === 'iat') return typeof value === 'number' && value >= NOW - 60 && value <= NOW + 5
    if (claim === 'htu') return typeof value === 'string' && value.toLowerCase() === RESOURCE
    return false
  }

  const verifier = () =>
    createVerifier({
      resource: RESOURCE,
      issuers: [iss.iss],
      keys: iss.keys,
      replay: new MemoryReplayStore({ clock }),
      clock,
      nonce: { current: () => 'n-1', check: (n) => n === 'n-1' },
    })
  const request = (proof: string) => ({
    method: 'POST',
    url: RESOURCE,
    headers: new Headers({ authorization: `DPoP ${token}`, dpop: proof }),
    message,
  })

  it('the unmutated proof verifies (control), once (replay)', async () => {
    const v = verifier()
    const { header, claims } = honest()
    const proof = await signRaw(header, claims, keys.privateKey)
    await expect(
      verifyProof(proof, { htm: 'POST', htu: RESOURCE, accessToken: token, clock, nonce: 'n-1' }),
    ).resolves.toMatchObject({ jti: claims.jti })
    await expect(v.verify(request(proof))).resolves.toBeDefined()
    await expect(v.verify(request(proof))).rejects.toMatchObject({ code: 'ERR_REPLAY' })
  })

  it('any value (or absence) in place of one claim or header member is refused', async () => {
    const v = verifier()
    const claim = fc.constantFrom('jti', 'htm', 'htu', 'iat', 'ath', 'nonce', 'mcp')
    const member = fc.constantFrom('typ', 'alg', 'jwk', 'crit', 'b64')
    const value = fc.oneof(
      fc.constant(undefined),
      fc.jsonValue({ maxDepth: 2 }),
      fc.string(),
      fc.integer({ min: NOW - 200, max: NOW + 200 }),
      fc.constantFrom(
        'post',
        'GET',
        'https://drive.example.com/mcp?x',
        'https://drive.example.com/mcp#x',
        'https://drive.example.com/mcp/',
        'https://drive.example.com:8443/mcp',
        'http://drive.example.com/mcp',
        'j'.repeat(513),
        '',
        'ES384',
        'none',
        'HS256',
        'EdDSA',
        'dpop+JWT',
        'JWT',
      ),
    )
    const caseArb = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({ where: fc.constant('claim' as const), name: claim, value }),
      },
      fc.record({ where: fc.constant('header' as const), name: member, value }),
      fc.record({
        where: fc.constant('jwk' as const),
        name: fc.constantFrom('kty', 'crv', 'x', 'y', 'd'),
        value: fc.oneof(value, fc.constant('AAAA')),
      }),
      fc.record({
        where: fc.constant('signature' as const),
        name: fc.constant('sig'),
        value: fc.nat(),
      }),
      fc.record({
        where: fc.constant('key' as const),
        name: fc.constant('other'),
        value: fc.constant(0),
      }),
    )
    let checked = 0
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { header, claims } = honest()
        let signer = keys.privateKey
        if (c.where === 'claim') {
          fc.pre(!couldBeValid(c.name, c.value, claims[c.name]))
          if (c.value === undefined) delete claims[c.name]
          else claims[c.name] = c.value
        } else if (c.where === 'header') {
          fc.pre(canonicalize(c.value) !== canonicalize(header[c.name]))
          if (c.value === undefined) delete header[c.name]
          else header[c.name] = c.value
        } else if (c.where === 'jwk') {
          const changed = { ...jwk }
          fc.pre(canonicalize(c.value) !== canonicalize(changed[c.name]))
          if (c.value === undefined) delete changed[c.name]
          else changed[c.name] = c.value
          header.jwk = changed
        } else if (c.where === 'key') {
          // Signed by another key that the proof's jwk names honestly: the token is not bound to it.
          header.jwk = await publicJwk(otherKeys)
          signer = otherKeys.privateKey
        }
        let proof = await signRaw(header, claims, signer)
        if (c.where === 'signature') {
          const [h, p, s] = proof.split('.') as [string, string, string]
          const sig = base64url.decode(s)
          const i = (c.value as number) % sig.length
          sig[i] = sig[i]! ^ (1 << ((c.value as number) % 8))
          proof = `${h}.${p}.${base64url.encode(sig)}`
        }
        const error = await v.verify(request(proof)).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error, `${c.where} ${c.name}=${JSON.stringify(c.value)}`).toBeInstanceOf(
          CallproofError,
        )
        expect(['ERR_INVALID_PROOF', 'ERR_USE_NONCE', 'ERR_BINDING_MISMATCH']).toContain(
          (error as CallproofError).code,
        )
        // verifyProof alone refuses everything but the binding and the key binding (verify's job).
        if (!(c.where === 'claim' && c.name === 'mcp') && c.where !== 'key') {
          await expect(
            verifyProof(proof, {
              htm: 'POST',
              htu: RESOURCE,
              accessToken: token,
              clock,
              nonce: 'n-1',
            }),
          ).rejects.toBeInstanceOf(CallproofError)
        }
        checked++
      }),
      { ...replay, numRuns: 2000, interruptAfterTimeLimit: BUDGET_MS },
    )
    expect(checked).toBeGreaterThan(200)
  })
})
