/**
 * Property-based fuzzing (fast-check) of the whole request path: the drive example's tools behind
 * the real callproof middleware, trusting a real issuer over loopback HTTP.
 *
 * Every case is one request whose expected fate is computed independently of the code under test
 * (from what the generator changed): `refuse` (a credential, the proof, the binding, the Origin
 * or Host was broken), `succeed` (nothing security-relevant was changed: the control that keeps
 * the "refuse" half from passing vacuously) or `either` (a header the SDK may dislike after
 * callproof let the request through). For every case, whatever it is:
 *
 * - the status is one the protocol allows (never 500), and 401/403 carry a DPoP challenge that
 *   parses (see `expectWellFormed`);
 * - a `refuse` case ran no tool and produced no `allowed` decision (spy storage + audit log).
 *
 * Runs are bounded in count and in time (`interruptAfterTimeLimit`); a failing case prints its
 * seed and path, and the minimal counterexample belongs in test/fuzz-corpus/ (fuzz-corpus.test.ts
 * replays that directory on every run).
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base64url, generateKeyPair } from 'jose'
import canonicalize from 'canonicalize'
import { createNonceSource } from '@callproof/core'
import {
  startFuzzDrive,
  expectNothingRan,
  expectWellFormed,
  fuzzReplay,
} from './support/fuzz-drive.js'
import type { DriveOp, FuzzDrive, FuzzOutcome, ProofParts } from './support/fuzz-drive.js'
import { bindingOf } from '../../../examples/drive/test/support/proof.js'

/** Per property: at most this many cases, and at most this long (ms). */
const RUNS = 1500
const BUDGET_MS = 7000
const ACCEPT = 'application/json, text/event-stream'

let fx: FuzzDrive
let counter = 0
const total = { cases: 0, refused: 0, succeeded: 0 }

beforeAll(async () => {
  fx = await startFuzzDrive()
})
afterAll(async () => {
  await fx.close()
  console.info(
    `fuzz: ${total.cases} requests (${total.refused} must-refuse, ${total.succeeded} controls that ran)`,
  )
})

type Fate = 'refuse' | 'succeed' | 'either'

/** An honest JSON-RPC message of one of the kinds the drive serves. */
const messageArb: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.constantFrom(
      'write_file',
      'read_file',
      'delete_file',
      'whoami',
      'list_files',
      'initialize',
      'notifications/initialized',
    ),
    fc.string({ maxLength: 40 }),
  )
  .map(([kind, text]) => {
    const id = ++counter
    const call = (name: string, args?: Record<string, unknown>) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: args === undefined ? { name } : { name, arguments: args },
    })
    switch (kind) {
      case 'write_file':
        return call('write_file', { path: `fuzz/w-${id}.txt`, content: text })
      case 'read_file':
        return call('read_file', { path: 'README.md' })
      case 'delete_file':
        return call('delete_file', { path: `fuzz/w-${id}.txt` })
      case 'whoami':
        return call('whoami')
      case 'list_files':
        return call('list_files', {})
      case 'initialize':
        return {
          jsonrpc: '2.0',
          id,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'fuzz', version: '0' },
          },
        }
      default:
        return { jsonrpc: '2.0', method: 'notifications/initialized' }
    }
  })

/** Checks that hold for every case, then the ones its fate demands. */
function judge(outcome: FuzzOutcome, fate: Fate, label: string): void {
  total.cases++
  expectWellFormed(fx, outcome.answer, label)
  if (fate === 'refuse') {
    total.refused++
    expectNothingRan(outcome, label)
  } else if (fate === 'succeed') {
    const where = `${label}: ${outcome.answer.status} ${outcome.answer.text.slice(0, 300)}`
    expect([200, 202], where).toContain(outcome.answer.status)
    expect(outcome.allowed, where).toHaveLength(1)
    total.succeeded++
  }
}

const TOOL_OPS = new Map<string, DriveOp['op']>([
  ['list_files', 'list'],
  ['read_file', 'read'],
  ['write_file', 'write'],
  ['delete_file', 'delete'],
  ['share_file', 'share'],
])

/** The drive operations a message may legitimately cause (and no others). */
function expectOnlyItsOwnOps(outcome: FuzzOutcome, message: unknown, label: string): void {
  const m = (typeof message === 'object' && message !== null ? message : {}) as {
    method?: unknown
    params?: { name?: unknown; arguments?: unknown }
  }
  const tool = m.method === 'tools/call' ? m.params?.name : undefined
  const args = (m.params?.arguments ?? {}) as { path?: unknown }
  // A Map: a fuzzed tool name such as `constructor` must not find Object.prototype's members.
  const op = TOOL_OPS.get(String(tool))
  for (const done of outcome.ops) {
    expect(done.op, label).toBe(op)
    expect(done.sub, label).toBe('alice')
    if (done.path !== undefined) expect(done.path, label).toBe(args.path)
  }
}

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`))

describe('fuzz: headers (Authorization, DPoP count/garbage, Origin/Host, Content-Type/Length)', () => {
  // Oracle tables are Maps, never plain objects: the fuzzer draws random strings, and a lookup
  // such as `table['toString']` on an object finds Object.prototype's members (seed -737550418
  // drew `Origin: toString`, got a function instead of a fate, and expected a 200).
  const authVariants = new Map<string, [Fate, (t: string, other: string) => string[] | undefined]>(
    Object.entries({
      dpop: ['succeed', (t) => [`DPoP ${t}`]],
      'dpop-lower': ['succeed', (t) => [`dpop ${t}`]],
      'dpop-upper': ['succeed', (t) => [`DPOP ${t}`]],
      'dpop-spaces': ['succeed', (t) => [`DPoP   ${t}`]],
      'dpop-padded': ['succeed', (t) => [`  DPoP ${t}  `]],
      absent: ['refuse', () => undefined],
      empty: ['refuse', () => ['']],
      bearer: ['refuse', (t) => [`Bearer ${t}`]],
      'scheme-only': ['refuse', () => ['DPoP']],
      'no-scheme': ['refuse', (t) => [t]],
      'dpop-tab': ['refuse', (t) => [`DPoP\t${t}`]],
      'token-twice': ['refuse', (t) => [`DPoP ${t} ${t}`]],
      'header-twice': ['refuse', (t) => [`DPoP ${t}`, `DPoP ${t}`]],
      'dpop-and-bearer': ['refuse', (t) => [`DPoP ${t}`, `Bearer ${t}`]],
      basic: ['refuse', () => ['Basic YWxpY2U6cGFzc3dvcmQ=']],
      'other-token': ['refuse', (_t, other) => [`DPoP ${other}`]],
      'truncated-token': ['refuse', (t) => [`DPoP ${t.slice(0, t.lastIndexOf('.') + 1)}`]],
      'two-segments': ['refuse', (t) => [`DPoP ${t.split('.').slice(0, 2).join('.')}`]],
    } satisfies Record<string, [Fate, (t: string, other: string) => string[] | undefined]>),
  )
  const origins = new Map<string, Fate>(
    Object.entries({
      '': 'succeed',
      'http://127.0.0.1:9': 'succeed',
      'http://localhost:9': 'succeed',
      'HTTP://127.0.0.1:9': 'succeed',
      'https://127.0.0.1:9': 'succeed',
      null: 'refuse',
      'http://evil.example': 'refuse',
      'http://127.0.0.1:9/': 'refuse',
      'http://127.0.0.1:10': 'refuse',
      'http://127.0.0.1': 'refuse',
      'http://127.0.0.1:9.evil.example': 'refuse',
    } satisfies Record<string, Fate>),
  )
  const hosts = new Map<string, Fate>(
    Object.entries({
      '': 'succeed',
      '127.0.0.1:9': 'succeed',
      'localhost:9': 'succeed',
      'LOCALHOST:9': 'succeed',
      '[::1]:9': 'succeed',
      'evil.example': 'refuse',
      '127.0.0.1:10': 'refuse',
      '127.0.0.1': 'refuse',
      'evil.example:9': 'refuse',
      '127.0.0.1:9.evil.example': 'refuse',
    } satisfies Record<string, Fate>),
  )
  /**
   * The fate of any `Origin` value, from the drive's stated policy (its resource's loopback names
   * on port 9, http or https, compared case-insensitively), not from the server's code. A header
   * value loses its leading and trailing spaces and tabs on the way in (Fetch "normalize").
   */
  const originFate = (origin: string): Fate => {
    const loopback = ['127.0.0.1:9', 'localhost:9', '[::1]:9'].flatMap((h) => [
      `http://${h}`,
      `https://${h}`,
    ])
    return loopback.includes(origin.replace(/^[\t ]+|[\t ]+$/g, '').toLowerCase())
      ? 'succeed'
      : 'refuse'
  }
  const proofKinds = ['valid', 'garbage', 'empty', 'other-message', 'other-key', 'jws-ish'] as const

  it('never a 500, never a tool run unless every credential header is right', async () => {
    // The rule for random values agrees with every hand-written case (an oracle self-check).
    for (const [origin, fate] of origins) {
      if (origin !== '') expect(originFate(origin), origin).toBe(fate)
    }
    const otherToken = await fx.mint({ jkt: fx.otherKey.jkt })
    // Two real sessions: the honest caller's, and bob's (another subject with another key).
    const init = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'f', version: '0' },
      },
    }
    const opened = await fx.send({
      headers: await fx.honestHeaders(init, { session: null }),
      body: JSON.stringify(init),
    })
    const ownSession = opened.answer.headers.get('mcp-session-id')!
    const bobToken = await fx.mint({ jkt: fx.otherKey.jkt, sub: 'bob' })
    const bobHeaders = {
      ...(await fx.honestHeaders(init, { token: bobToken, session: null })),
      dpop: await fx.sign(await fx.proofParts(init, bobToken, fx.otherKey), fx.otherKey),
    }
    const bob = await fx.send({ headers: bobHeaders, body: JSON.stringify(init) })
    const otherSession = bob.answer.headers.get('mcp-session-id')!
    expect(ownSession).toMatch(/^[\x21-\x7e]{16,}$/)
    expect(otherSession).toMatch(/^[\x21-\x7e]{16,}$/)
    const caseArb = fc.record({
      message: messageArb,
      // Weighted towards the honest value of each part, so that many cases change one thing.
      auth: fc.oneof(
        { weight: 3, arbitrary: fc.constant('dpop') },
        fc.constantFrom(...authVariants.keys()),
      ),
      proofs: fc.oneof(
        { weight: 3, arbitrary: fc.constant(['valid' as (typeof proofKinds)[number]]) },
        fc.array(fc.constantFrom(...proofKinds), { maxLength: 3 }),
      ),
      garbage: printable(60),
      origin: fc.oneof(
        { weight: 3, arbitrary: fc.constant('') },
        fc.constantFrom(...origins.keys()),
      ),
      randomOrigin: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, printable(30)),
      host: fc.oneof({ weight: 3, arbitrary: fc.constant('') }, fc.constantFrom(...hosts.keys())),
      contentType: fc.oneof(
        { weight: 6, arbitrary: fc.constant('application/json') },
        fc.constantFrom('', 'text/plain', 'application/json; charset=utf-8', 'APPLICATION/JSON'),
        printable(30),
      ),
      accept: fc.oneof(
        { weight: 6, arbitrary: fc.constant(ACCEPT) },
        fc.constantFrom('', 'application/json', '*/*', 'text/event-stream'),
        printable(20),
      ),
      session: fc.oneof(
        { weight: 4, arbitrary: fc.constant('own') },
        fc.constantFrom('none', 'other-caller', 'random', 'empty', 'long'),
      ),
      randomSession: printable(50),
      contentLength: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        fc.oneof(
          fc.constantFrom('0', '1', '1048576', '1048577', '99999999999999999999', '-1', 'abc'),
          fc.nat().map(String),
        ),
      ),
    })
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const fates: Fate[] = []
        const headers: Record<string, string | string[]> = {}
        const [authFate, auth] = authVariants.get(c.auth)!
        fates.push(authFate)
        const authValue = auth(fx.token, otherToken)
        if (authValue !== undefined) headers.authorization = authValue
        const proofs: string[] = []
        for (const kind of c.proofs) {
          if (kind === 'valid') proofs.push(await fx.sign(await fx.proofParts(c.message)))
          else if (kind === 'garbage') proofs.push(c.garbage)
          else if (kind === 'empty') proofs.push('')
          else if (kind === 'jws-ish') proofs.push('eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AAAA')
          else if (kind === 'other-key') {
            const parts = await fx.proofParts(c.message, fx.token, fx.otherKey)
            proofs.push(await fx.sign(parts, fx.otherKey))
          } else {
            const other = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }
            proofs.push(await fx.sign(await fx.proofParts(other)))
          }
        }
        if (proofs.length > 0) headers.dpop = proofs
        fates.push(c.proofs.length === 1 && c.proofs[0] === 'valid' ? 'succeed' : 'refuse')
        const origin = c.randomOrigin ?? c.origin
        if (origin !== '') headers.origin = origin
        // A random Origin is refused unless it happens to be one of the allowed spellings.
        fates.push(origin === '' ? 'succeed' : originFate(origin))
        if (c.host !== '') headers.host = c.host
        fates.push(hosts.get(c.host)!)
        // A session that is not the caller's own answers 404 like an unknown one, and runs
        // nothing; initialize ignores the header (it opens a new session). No session at all is
        // served: the drive leaves `sessions.requireSessionId` (400 without one) off.
        if (c.session !== 'none') {
          headers['mcp-session-id'] = {
            own: ownSession,
            'other-caller': otherSession,
            random: c.randomSession,
            empty: '',
            long: 'x'.repeat(5000),
          }[c.session]!
        }
        const foreign = c.session !== 'own' && c.session !== 'none'
        if (foreign && c.message.method !== 'initialize') fates.push('refuse')
        headers['content-type'] = c.contentType
        headers.accept = c.accept
        const honestHeaders = c.contentType === 'application/json' && c.accept === ACCEPT
        if (!honestHeaders) fates.push('either')
        if (c.contentLength !== null) {
          headers['content-length'] = c.contentLength
          // Declared larger than the limit: refused before reading (413). A smaller lie is
          // harmless: the body is read, bounded, whatever the header says.
          const big = /^\d+$/.test(c.contentLength) && Number(c.contentLength) > 1024 * 1024
          fates.push(big ? 'refuse' : 'either')
        }
        const fate: Fate = fates.includes('refuse')
          ? 'refuse'
          : fates.includes('either')
            ? 'either'
            : 'succeed'
        const outcome = await fx.send({ headers, body: JSON.stringify(c.message) })
        judge(outcome, fate, `headers ${JSON.stringify({ ...c, message: c.message.method })}`)
        expectOnlyItsOwnOps(outcome, c.message, 'headers')
      }),
      { ...fuzzReplay, numRuns: RUNS, interruptAfterTimeLimit: BUDGET_MS },
    )
  }, 30_000)
})

/** Do two compact JWS strings decode to the same bytes (base64url allows several spellings)? */
function sameDecoded(a: string, b: string): boolean {
  const pa = a.split('.')
  const pb = b.split('.')
  if (pa.length !== 3 || pb.length !== 3) return false
  for (let i = 0; i < 3; i++) {
    if (!/^[A-Za-z0-9_-]*$/.test(pb[i]!)) return false
    if (Buffer.compare(Buffer.from(pa[i]!, 'base64url'), Buffer.from(pb[i]!, 'base64url')) !== 0)
      return false
  }
  return true
}

describe('fuzz: access tokens (claims, header, signature bytes, alg/typ/kid, base64 garbage)', () => {
  it('a token that is not exactly a valid, bound token never runs a tool', async () => {
    const now = Math.floor(Date.now() / 1000)
    const stranger = await generateKeyPair('ES256')
    const broken: Record<string, () => Promise<string>> = {
      expired: () => fx.mint({ expiresIn: -60 }),
      'aud-other': () => fx.mint({ aud: 'http://127.0.0.1:10/mcp' }),
      'aud-prefix': () => fx.mint({ aud: 'http://127.0.0.1:9/mcp/extra' }),
      'aud-missing': () => fx.mint({ aud: null }),
      'aud-array-without': () => fx.mint({ aud: ['https://a.example/mcp', 'http://127.0.0.1:9'] }),
      'iss-other': () => fx.mint({ iss: 'http://127.0.0.1:1' }),
      'iss-slash': () => fx.mint({ iss: `${fx.issuer.url}/` }),
      unbound: () => fx.mint({ jkt: null }),
      'jkt-other': () => fx.mint({ jkt: fx.otherKey.jkt }),
      'jkt-number': () => fx.mint({ claims: { cnf: { jkt: 5 } } }),
      'jkt-empty': () => fx.mint({ claims: { cnf: { jkt: '' } } }),
      'cnf-string': () => fx.mint({ claims: { cnf: fx.key.jkt } }),
      'typ-jwt': () => fx.mint({ typ: 'JWT' }),
      'typ-missing': () => fx.mint({ typ: null }),
      'typ-dpop': () => fx.mint({ typ: 'dpop+jwt' }),
      'kid-unknown': () => fx.mint({ kid: 'no-such-kid' }),
      'signed-by-stranger': () => fx.mint({ signWith: stranger.privateKey }),
      hs256: () => fx.issuer.mintHmac({ jkt: fx.key.jkt }),
      none: async () => fx.issuer.mintNone({ jkt: fx.key.jkt }),
      'sub-missing': () => fx.mint({ claims: { sub: undefined } }),
      'sub-number': () => fx.mint({ claims: { sub: 7 } }),
      'client-id-missing': () => fx.mint({ claims: { client_id: undefined } }),
      'jti-missing': () => fx.mint({ claims: { jti: undefined } }),
      'exp-missing': () => fx.mint({ claims: { exp: undefined } }),
      'exp-string': () => fx.mint({ claims: { exp: String(now + 600) } }),
      'iat-future': () => fx.mint({ iatOffset: 3600 }),
      'nbf-future': () => fx.mint({ claims: { nbf: now + 3600 } }),
      'scope-array': () => fx.mint({ claims: { scope: ['drive:read', 'drive:write'] } }),
      'acr-number': () => fx.mint({ claims: { acr: 2 } }),
      'auth-time-string': () => fx.mint({ claims: { auth_time: 'yesterday' } }),
      'authz-details-object': () => fx.mint({ claims: { authorization_details: {} } }),
    }
    const minted: [string, string][] = []
    for (const [name, make] of Object.entries(broken)) minted.push([name, await make()])

    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. ~'.split(
      '',
    )
    const byteMutation = fc
      .record({
        segment: fc.integer({ min: 0, max: 2 }),
        at: fc.nat(),
        op: fc.constantFrom('replace', 'insert', 'delete', 'duplicate-segment', 'swap-segments'),
        char: fc.constantFrom(...alphabet),
      })
      .map((m) => {
        const parts = fx.token.split('.')
        const seg = parts[m.segment]!
        const i = seg.length === 0 ? 0 : m.at % seg.length
        if (m.op === 'replace') parts[m.segment] = seg.slice(0, i) + m.char + seg.slice(i + 1)
        else if (m.op === 'insert') parts[m.segment] = seg.slice(0, i) + m.char + seg.slice(i)
        else if (m.op === 'delete') parts[m.segment] = seg.slice(0, i) + seg.slice(i + 1)
        else if (m.op === 'duplicate-segment') parts.splice(m.segment, 0, seg)
        else parts.reverse()
        return { name: `bytes ${JSON.stringify(m)}`, token: parts.join('.') }
      })
    const claimEdit = fc
      .record({
        claim: fc.constantFrom('iss', 'aud', 'exp', 'cnf', 'sub', 'client_id', 'scope', 'acr'),
        value: fc.jsonValue({ maxDepth: 2 }),
      })
      .map(({ claim, value }) => {
        // Payload re-encoded with one claim changed, header and signature kept: a forgery.
        const [h, p, s] = fx.token.split('.') as [string, string, string]
        const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<
          string,
          unknown
        >
        payload[claim] = value
        const edited = base64url.encode(JSON.stringify(payload))
        return { name: `claim ${claim}=${JSON.stringify(value)}`, token: `${h}.${edited}.${s}` }
      })
    const headerEdit = fc
      .record({
        member: fc.constantFrom('alg', 'typ', 'kid', 'jku', 'jwk', 'crit'),
        value: fc.jsonValue({ maxDepth: 1 }),
      })
      .map(({ member, value }) => {
        const [h, p, s] = fx.token.split('.') as [string, string, string]
        const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>
        header[member] = value
        return {
          name: `header ${member}=${JSON.stringify(value)}`,
          token: `${base64url.encode(JSON.stringify(header))}.${p}.${s}`,
        }
      })
    const tokenArb = fc.oneof(
      fc.constantFrom(...minted).map(([name, token]) => ({ name, token })),
      byteMutation,
      claimEdit,
      headerEdit,
      printable(200).map((token) => ({ name: 'garbage', token })),
    )
    await fc.assert(
      fc.asyncProperty(tokenArb, messageArb, async ({ name, token }, message) => {
        // Spellings that decode to the very same signed bytes are the same token, not a forgery.
        fc.pre(token !== fx.token && !sameDecoded(fx.token, token))
        const headers = {
          ...(await fx.honestHeaders(message)),
          authorization: `DPoP ${token}`,
          // The proof is honest for the token it travels with (its ath matches): only the
          // token itself is wrong.
          dpop: await fx.sign(await fx.proofParts(message, token)),
        }
        const outcome = await fx.send({ headers, body: JSON.stringify(message) })
        judge(outcome, 'refuse', `token ${name}`)
      }),
      { ...fuzzReplay, numRuns: RUNS, interruptAfterTimeLimit: BUDGET_MS },
    )
  }, 30_000)
})

describe('fuzz: proofs (every claim mutated, missing or mistyped; header, jwk, signature)', () => {
  type Edit = (p: ProofParts, message: Record<string, unknown>) => void | Promise<void>
  const set =
    (claim: string, value: unknown): Edit =>
    (p) => {
      p.claims[claim] = value
    }
  const drop =
    (claim: string): Edit =>
    (p) => {
      delete p.claims[claim]
    }
  const setHeader =
    (member: string, value: unknown): Edit =>
    (p) => {
      p.header[member] = value
    }
  const now = () => Math.floor(Date.now() / 1000)
  const mcpOf = (p: ProofParts) => (p.claims.mcp ?? {}) as Record<string, unknown>
  const fatal: Record<string, Edit> = {
    'jti-missing': drop('jti'),
    'jti-empty': set('jti', ''),
    'jti-number': set('jti', 12345),
    'jti-object': set('jti', { a: 1 }),
    'jti-null': set('jti', null),
    'jti-too-long': set('jti', 'j'.repeat(513)),
    'htm-missing': drop('htm'),
    'htm-get': set('htm', 'GET'),
    'htm-lower': set('htm', 'post'),
    'htm-number': set('htm', 1),
    'htu-missing': drop('htu'),
    'htu-other-port': set('htu', 'http://127.0.0.1:10/mcp'),
    'htu-other-host': set('htu', 'http://evil.example:9/mcp'),
    'htu-https': set('htu', 'https://127.0.0.1:9/mcp'),
    'htu-query': set('htu', 'http://127.0.0.1:9/mcp?x=1'),
    'htu-empty-query': set('htu', 'http://127.0.0.1:9/mcp?'),
    'htu-fragment': set('htu', 'http://127.0.0.1:9/mcp#f'),
    'htu-trailing-slash': set('htu', 'http://127.0.0.1:9/mcp/'),
    'htu-path-case': set('htu', 'http://127.0.0.1:9/MCP'),
    'htu-relative': set('htu', '/mcp'),
    'htu-garbage': set('htu', 'not a url'),
    'htu-number': set('htu', 42),
    'htu-userinfo': set('htu', 'http://user@127.0.0.1:9/mcp/../other'),
    'iat-missing': drop('iat'),
    'iat-old': (p) => void (p.claims.iat = now() - 120),
    'iat-future': (p) => void (p.claims.iat = now() + 60),
    'iat-string': (p) => void (p.claims.iat = String(now())),
    'iat-null': set('iat', null),
    'iat-huge': set('iat', 1e20),
    'iat-negative': set('iat', -1),
    'ath-missing': drop('ath'),
    'ath-other': set('ath', 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'),
    'ath-empty': set('ath', ''),
    'ath-number': set('ath', 5),
    'nonce-number': set('nonce', 5),
    'exp-past': (p) => void (p.claims.exp = now() - 1),
    'exp-string': set('exp', 'later'),
    'nbf-future': (p) => void (p.claims.nbf = now() + 60),
    'mcp-missing': drop('mcp'),
    'mcp-empty': set('mcp', {}),
    'mcp-null': set('mcp', null),
    'mcp-string': set('mcp', 'tools/call'),
    'mcp-array': (p) => void (p.claims.mcp = [p.claims.mcp]),
    'mcp-method-other': (p) => void (p.claims.mcp = { ...mcpOf(p), method: 'tools/list' }),
    'mcp-method-space': (p) => void (p.claims.mcp = { ...mcpOf(p), method: `${mcpOf(p).method} ` }),
    'mcp-name-added': (p) => void (p.claims.mcp = { ...mcpOf(p), name: 'share_file' }),
    'mcp-name-case': (p) =>
      void (p.claims.mcp = { ...mcpOf(p), name: String(mcpOf(p).name ?? 'x').toUpperCase() + 'X' }),
    'mcp-args-other': (p) => void (p.claims.mcp = { ...mcpOf(p), args: 'A'.repeat(43) }),
    'mcp-args-number': (p) => void (p.claims.mcp = { ...mcpOf(p), args: 1 }),
    'mcp-extra-member': (p) => void (p.claims.mcp = { ...mcpOf(p), extra: true }),
    'mcp-response': set('mcp', { response: 1 }),
    'typ-missing': setHeader('typ', undefined),
    'typ-jwt': setHeader('typ', 'JWT'),
    'typ-at': setHeader('typ', 'at+jwt'),
    'alg-es384': setHeader('alg', 'ES384'),
    'alg-rs256': setHeader('alg', 'RS256'),
    'alg-eddsa-on-ec-key': setHeader('alg', 'EdDSA'),
    'alg-missing': setHeader('alg', undefined),
    'jwk-missing': setHeader('jwk', undefined),
    'jwk-string': setHeader('jwk', 'key'),
    'jwk-array': (p) => void (p.header.jwk = [p.header.jwk]),
    'jwk-other-key': (p) => void (p.header.jwk = fx.otherKey.publicJwk),
    'jwk-private-d': (p) =>
      void (p.header.jwk = {
        ...(p.header.jwk as object),
        d: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      }),
    'jwk-kty-rsa': (p) => void (p.header.jwk = { ...(p.header.jwk as object), kty: 'RSA' }),
    'jwk-crv-p384': (p) => void (p.header.jwk = { ...(p.header.jwk as object), crv: 'P-384' }),
    'jwk-x-garbage': (p) => void (p.header.jwk = { ...(p.header.jwk as object), x: 'AAAA' }),
    'jwk-symmetric': setHeader('jwk', { kty: 'oct', k: 'AAAA' }),
    crit: setHeader('crit', ['exp']),
    'b64-false': setHeader('b64', false),
  }
  // Changes that keep the proof valid: each must still succeed, or the fatal half proves nothing.
  const benign: Record<string, Edit> = {
    none: () => undefined,
    'jti-other': (p) => void (p.claims.jti = `other-${crypto.randomUUID()}`),
    'htu-upper-host': set('htu', 'HTTP://127.0.0.1:9/mcp'),
    'htu-encoded': set('htu', 'http://127.0.0.1:9/%6Dcp'),
    'iat-30s-ago': (p) => void (p.claims.iat = now() - 30),
    'iat-2s-ahead': (p) => void (p.claims.iat = now() + 2),
    'extra-claim': set('x-extra', { anything: [1, 2] }),
    'exp-future': (p) => void (p.claims.exp = now() + 60),
    'nonce-unrequested': set('nonce', 'whatever'),
    'header-kid': setHeader('kid', 'k1'),
    'jwk-extra-members': (p) =>
      void (p.header.jwk = { ...(p.header.jwk as object), kid: 'x', use: 'sig', alg: 'ES256' }),
  }
  const mutate = async (
    parts: ProofParts,
    how: 'sig-flip' | 'sig-truncate' | 'sig-append' | 'other-key' | 'unsigned' | 'hmac',
    at: number,
  ): Promise<string> => {
    if (how === 'other-key') {
      // A valid proof by another key: the token is bound to ours (jkt mismatch).
      return fx.sign(
        { ...parts, header: { ...parts.header, jwk: fx.otherKey.publicJwk } },
        fx.otherKey,
      )
    }
    if (how === 'unsigned') {
      const enc = (v: unknown) => base64url.encode(JSON.stringify(v))
      return `${enc({ ...parts.header, alg: 'none' })}.${enc(parts.claims)}.`
    }
    if (how === 'hmac') {
      const { rawProof } = await import('../../../examples/drive/test/support/proof.js')
      return rawProof({
        header: { ...parts.header, alg: 'HS256' },
        claims: parts.claims,
        key: new TextEncoder().encode('0123456789abcdef0123456789abcdef'),
      })
    }
    const proof = await fx.sign(parts)
    const [h, p, s] = proof.split('.') as [string, string, string]
    const sig = Buffer.from(s, 'base64url')
    if (how === 'sig-flip') sig[at % sig.length] = sig[at % sig.length]! ^ (1 << (at % 8))
    const bytes =
      how === 'sig-truncate'
        ? sig.subarray(0, at % sig.length)
        : how === 'sig-append'
          ? Buffer.concat([sig, Buffer.from([at & 255])])
          : sig
    return `${h}.${p}.${bytes.toString('base64url')}`
  }

  it('every single-claim or header mutation of a valid proof is refused; benign ones still pass', async () => {
    const edits = [
      ...Object.keys(fatal).map((n) => ({ name: n, fate: 'refuse' as Fate })),
      ...Object.keys(benign).map((n) => ({ name: n, fate: 'succeed' as Fate })),
    ]
    const signing = fc.constantFrom(
      'sig-flip',
      'sig-truncate',
      'sig-append',
      'other-key',
      'unsigned',
      'hmac',
    )
    const caseArb = fc.oneof(
      { weight: 4, arbitrary: fc.record({ edit: fc.constantFrom(...edits), message: messageArb }) },
      fc.record({ how: signing, at: fc.nat(), message: messageArb }),
      // A random value in place of one claim (kept only when it cannot be a valid one).
      fc.record({
        claim: fc.constantFrom('jti', 'htm', 'htu', 'iat', 'ath', 'mcp'),
        value: fc.jsonValue({ maxDepth: 3 }),
        message: messageArb,
      }),
    )
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const parts = await fx.proofParts(c.message)
        let proof: string
        let fate: Fate = 'refuse'
        let label: string
        if ('edit' in c) {
          await (fatal[c.edit.name] ?? benign[c.edit.name])!(parts, c.message)
          for (const k of Object.keys(parts.header))
            if (parts.header[k] === undefined) delete parts.header[k]
          proof = await fx.sign(parts)
          fate = c.edit.fate
          label = `proof ${c.edit.name} on ${JSON.stringify(c.message).slice(0, 120)}`
        } else if ('how' in c) {
          proof = await mutate(parts, c.how, c.at)
          label = `proof ${c.how}@${c.at}`
        } else {
          const honest = parts.claims[c.claim]
          const v = c.value
          // Values that could be valid: skip them (a fresh jti string, an iat inside the window,
          // the honest value itself, an htu/mcp equal up to the comparison's normalisation).
          fc.pre(canonicalize(v) !== canonicalize(honest))
          if (c.claim === 'jti') fc.pre(typeof v !== 'string' || v === '' || v.length > 512)
          if (c.claim === 'iat') fc.pre(typeof v !== 'number' || Math.abs(v - now()) > 70)
          if (c.claim === 'htu' && typeof v === 'string') fc.pre(v.toLowerCase() !== fx.resource)
          parts.claims[c.claim] = v
          proof = await fx.sign(parts)
          label = `proof ${c.claim}=${JSON.stringify(v).slice(0, 100)}`
        }
        const headers = { ...(await fx.honestHeaders(c.message)), dpop: proof }
        const outcome = await fx.send({ headers, body: JSON.stringify(c.message) })
        judge(outcome, fate, label)
      }),
      { ...fuzzReplay, numRuns: RUNS, interruptAfterTimeLimit: BUDGET_MS },
    )
  }, 30_000)
})

describe('fuzz: bodies (random JSON, JSON-RPC shapes, arguments changed under a proof, limits)', () => {
  /** The binding an independent implementation gives, or undefined when it cannot bind one. */
  async function independentBinding(message: unknown): Promise<unknown> {
    try {
      if (typeof message !== 'object' || message === null || Array.isArray(message))
        return undefined
      return await bindingOf(message as Record<string, unknown>)
    } catch {
      return undefined
    }
  }
  const same = (a: unknown, b: unknown) => a !== undefined && canonicalize(a) === canonicalize(b)

  it('a body that is not the message the proof names never runs; an honest one never 500s', async () => {
    const edit = fc.oneof(
      // Arguments changed under the proof (a value, a key added or removed).
      fc.record({
        kind: fc.constant('args'),
        value: fc.jsonValue({ maxDepth: 3 }),
        key: fc.constantFrom('path', 'content', 'extra', '__proto__', 'constructor'),
      }),
      fc.record({
        kind: fc.constant('name'),
        value: fc.constantFrom(
          'delete_file',
          'write_file',
          'read_file',
          'share_file',
          'WRITE_FILE',
          'write_file ',
          '',
        ),
      }),
      fc.record({
        kind: fc.constant('method'),
        value: fc.constantFrom(
          'tools/list',
          'prompts/get',
          'resources/read',
          'tools/call ',
          'Tools/Call',
          '',
        ),
      }),
      fc.record({
        kind: fc.constant('member'),
        key: fc.constantFrom('jsonrpc', 'id', 'method', 'params', 'result', 'error'),
        value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
      }),
      fc.record({ kind: fc.constant('params'), value: fc.jsonValue({ maxDepth: 3 }) }),
      fc.record({ kind: fc.constant('whole'), value: fc.jsonValue({ maxDepth: 4 }) }),
    )
    await fc.assert(
      fc.asyncProperty(messageArb, edit, fc.boolean(), async (original, e, honestProof) => {
        const body = structuredClone(original) as Record<string, unknown>
        let sent: unknown = body
        const params = (body.params ?? {}) as Record<string, unknown>
        if (e.kind === 'args') {
          const args = { ...((params.arguments ?? {}) as Record<string, unknown>) }
          Object.defineProperty(args, e.key, {
            value: e.value,
            enumerable: true,
            configurable: true,
            writable: true,
          })
          body.params = { ...params, arguments: args }
        } else if (e.kind === 'name') body.params = { ...params, name: e.value }
        else if (e.kind === 'method') body.method = e.value
        else if (e.kind === 'member') {
          if (e.value === undefined) delete body[e.key]
          else body[e.key] = e.value
        } else if (e.kind === 'params') body.params = e.value
        else sent = e.value
        const text = JSON.stringify(sent)
        fc.pre(text !== undefined)
        const parsed = JSON.parse(text) as unknown
        const [bound, actual] = await Promise.all([
          independentBinding(original),
          independentBinding(parsed),
        ])
        // Either the proof names the original message (the attack: the body was changed under
        // it) or, as an honest client would, the body actually sent.
        const bindTo = honestProof && actual !== undefined ? parsed : original
        const headers = {
          ...(await fx.honestHeaders(original)),
          dpop: await fx.sign(await fx.proofParts(bindTo)),
        }
        const outcome = await fx.send({ headers, body: text })
        const fate: Fate = bindTo === parsed || same(bound, actual) ? 'either' : 'refuse'
        judge(
          outcome,
          fate,
          `body ${e.kind} ${text.slice(0, 200)} (proof for ${bindTo === parsed ? 'the body' : 'the original'})`,
        )
        expectOnlyItsOwnOps(outcome, parsed, `body ${text.slice(0, 200)}`)
      }),
      { ...fuzzReplay, numRuns: RUNS, interruptAfterTimeLimit: BUDGET_MS },
    )
  }, 30_000)

  it('raw bodies: bytes, nesting, sizes at the limit, unicode, huge numbers', async () => {
    const limit = 1024 * 1024
    const write = (content: string) => ({
      jsonrpc: '2.0',
      id: ++counter,
      method: 'tools/call',
      params: { name: 'write_file', arguments: { path: `fuzz/raw-${counter}.txt`, content } },
    })
    const shell = JSON.stringify(write('')).length
    const rawArb = fc.oneof(
      fc
        .uint8Array({ maxLength: 200 })
        .map((b) => ({ name: 'bytes', body: b as Uint8Array | string })),
      printable(200).map((s) => ({ name: 'text', body: s as Uint8Array | string })),
      fc.integer({ min: 1, max: 20_000 }).map((depth) => ({
        name: `nesting ${depth}`,
        body: JSON.stringify(write('x')).replace('"x"', `${'['.repeat(depth)}${']'.repeat(depth)}`),
      })),
      fc.integer({ min: -3, max: 3 }).map((delta) => {
        // Sizes around the 1 MiB limit (counter digits can vary by one; the fate follows the real length).
        const m = write('')
        const pad = 'a'.repeat(limit - shell + delta - 2)
        return {
          name: `size limit${delta >= 0 ? '+' : ''}${delta}`,
          body: JSON.stringify({
            ...m,
            params: { ...m.params, arguments: { ...m.params.arguments, content: pad } },
          }),
        }
      }),
      fc
        .constantFrom(
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"fuzz/n.txt","content":"\\ud800"}}}',
          '{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"whoami"}}',
          '{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"whoami"}}',
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"fuzz/n.txt","content":1e400}}}',
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"fuzz/n.txt","content":"\\u2028\\u0000\\"\\\\"}}}',
          '\ufeff{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}',
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}} {}',
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"},"params":{"name":"list_files"}}',
        )
        .map((body) => ({ name: 'nasty', body: body as Uint8Array | string })),
    )
    await fc.assert(
      fc.asyncProperty(rawArb, fc.boolean(), async ({ name, body }, honestProof) => {
        let parsed: unknown
        try {
          // Decoded as a server does it (a TextDecoder drops a leading BOM), parsed once.
          const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
          parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
        } catch {
          parsed = undefined
        }
        const actual = await independentBinding(parsed)
        const decoy = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami' } }
        const bindTo = honestProof && actual !== undefined ? parsed : decoy
        const headers = {
          ...(await fx.honestHeaders(decoy)),
          dpop: await fx.sign(await fx.proofParts(bindTo)),
        }
        const outcome = await fx.send({ headers, body })
        const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length
        const fate: Fate =
          size > limit || actual === undefined || !same(actual, await independentBinding(bindTo))
            ? 'refuse'
            : 'either'
        judge(
          outcome,
          fate,
          `raw ${name} (${size} bytes, proof for ${bindTo === decoy ? 'a decoy' : 'the body'})`,
        )
        if (size > limit) expect(outcome.answer.status, name).toBe(413)
        expectOnlyItsOwnOps(outcome, parsed, `raw ${name}`)
      }),
      { ...fuzzReplay, numRuns: 300, interruptAfterTimeLimit: BUDGET_MS },
    )
  }, 30_000)
})

describe('fuzz: server nonces (RFC 9449 §8)', () => {
  it('a proof without the current nonce never runs a tool and is told the nonce', async () => {
    const secret = crypto.getRandomValues(new Uint8Array(32))
    const nf = await startFuzzDrive({ nonce: createNonceSource({ secret }) })
    try {
      const stale = await createNonceSource({ secret, clock: () => Date.now() - 600_000 }).current()
      const future = await createNonceSource({
        secret,
        clock: () => Date.now() + 600_000,
      }).current()
      const foreign = await createNonceSource({
        secret: crypto.getRandomValues(new Uint8Array(32)),
      }).current()
      let rotations = 0
      // The first answer (even a refusal) hands out the current nonce.
      await nf.send({ headers: {}, body: '{}' })
      expect(nf.nonce).toBeDefined()
      const kinds = fc.oneof(
        { weight: 2, arbitrary: fc.constant({ kind: 'current', value: '' }) },
        fc
          .constantFrom('missing', 'stale', 'future', 'foreign', 'empty', 'truncated', 'number')
          .map((kind) => ({ kind, value: '' })),
        printable(60).map((value) => ({ kind: 'random', value })),
      )
      await fc.assert(
        fc.asyncProperty(kinds, messageArb, async ({ kind, value }, message) => {
          const parts = await nf.proofParts(message)
          const current = nf.nonce!
          const nonce: unknown = {
            current,
            missing: undefined,
            stale,
            future,
            foreign,
            empty: '',
            truncated: current.slice(0, -1),
            number: 12345,
            random: value,
          }[kind]
          fc.pre(kind === 'current' || nonce !== current)
          parts.claims.nonce = nonce
          const headers = { ...(await nf.honestHeaders(message)), dpop: await nf.sign(parts) }
          const outcome = await nf.send({ headers, body: JSON.stringify(message) })
          expectWellFormed(nf, outcome.answer, `nonce ${kind}`)
          total.cases++
          if (kind === 'current') {
            expect([200, 202], outcome.answer.text).toContain(outcome.answer.status)
            total.succeeded++
            return
          }
          total.refused++
          expectNothingRan(outcome, `nonce ${kind} ${JSON.stringify(nonce)}`)
          if (kind !== 'number') {
            expect(outcome.answer.status).toBe(401)
            expect(outcome.answer.headers.get('www-authenticate')).toMatch(/error="use_dpop_nonce"/)
            const told = outcome.answer.headers.get('dpop-nonce')
            expect(told).not.toBeNull()
            if (told !== current) {
              // The 30 s nonce window turned between the previous answer and this one (once per
              // turn: a run of a few seconds sees one in about one run in ten, and expecting the
              // old nonce here made the suite flaky). The refusal names the new window's nonce:
              // that nonce, and not merely some string, must be the one that works now.
              rotations++
              const retry = await nf.proofParts(message)
              retry.claims.nonce = told
              const again = await nf.send({
                headers: { ...(await nf.honestHeaders(message)), dpop: await nf.sign(retry) },
                body: JSON.stringify(message),
              })
              expect([200, 202], `after rotation: ${again.answer.text}`).toContain(
                again.answer.status,
              )
            }
          }
        }),
        { ...fuzzReplay, numRuns: 600, interruptAfterTimeLimit: 4000 },
      )
      if (rotations > 0) console.info(`fuzz: nonce window turned ${rotations} time(s) mid-run`)
    } finally {
      await nf.close()
    }
  }, 30_000)
})

describe('fuzz: per-call approvals (authorization_details) for share_file', () => {
  it('only an approval naming exactly this call, on this resource, runs it, and only once', async () => {
    const { argsDigest: digestOf } = await import('../../../examples/drive/test/support/proof.js')
    type Detail = Record<string, unknown>
    const edits: Record<string, [Fate, (d: Detail, all: Detail[]) => Detail[]]> = {
      exact: ['succeed', (d) => [d]],
      'plus-other-resource': [
        'succeed',
        (d) => [{ ...d, resource: 'https://other.example/mcp', tool: 'delete_file' }, d],
      ],
      'type-other': ['refuse', (d) => [{ ...d, type: 'mcp_tool_calls' }]],
      'resource-other': ['refuse', (d) => [{ ...d, resource: 'http://127.0.0.1:10/mcp' }]],
      'resource-slash': ['refuse', (d) => [{ ...d, resource: `${fx.resource}/` }]],
      'tool-other': ['refuse', (d) => [{ ...d, tool: 'delete_file' }]],
      'tool-missing': ['refuse', (d) => [{ ...d, tool: undefined }]],
      'args-missing': ['refuse', (d) => [{ ...d, args: undefined }]],
      'args-empty-object-digest': [
        'refuse',
        (d) => [{ ...d, args: 'RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o' }],
      ],
      'args-number': ['refuse', (d) => [{ ...d, args: 1 }]],
      'two-for-us': ['refuse', (d) => [d, { ...d, tool: 'write_file' }]],
      'same-twice': ['refuse', (d) => [d, d]],
      none: ['refuse', () => []],
      'not-an-object': ['refuse', () => ['mcp_tool_call' as unknown as Detail]],
    }
    const caseArb = fc.record({
      edit: fc.oneof(
        { weight: 4, arbitrary: fc.constant('exact') },
        fc.constantFrom(...Object.keys(edits)),
      ),
      // The call actually sent may differ from the approved one (another recipient).
      withUser: fc.stringMatching(/^[a-z]{1,12}$/),
      sentTo: fc.option(fc.stringMatching(/^[a-z]{1,12}$/), { nil: undefined, freq: 2 }),
    })
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ edit, withUser, sentTo }) => {
        const approvedArgs = { path: 'README.md', with: withUser }
        const sentArgs = { path: 'README.md', with: sentTo ?? withUser }
        const detail: Detail = {
          type: 'mcp_tool_call',
          resource: fx.resource,
          tool: 'share_file',
          args: await digestOf(approvedArgs),
        }
        const [editFate, make] = edits[edit]!
        const details = make(detail, []).map((d) =>
          typeof d === 'object'
            ? Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined))
            : d,
        )
        const token = await fx.mint({ authorizationDetails: details })
        const message = {
          jsonrpc: '2.0',
          id: ++counter,
          method: 'tools/call',
          params: { name: 'share_file', arguments: sentArgs },
        }
        const send = async () =>
          fx.send({
            headers: await fx.honestHeaders(message, { token }),
            body: JSON.stringify(message),
          })
        const fate: Fate =
          editFate === 'succeed' && (sentTo === undefined || sentTo === withUser)
            ? 'succeed'
            : 'refuse'
        const first = await send()
        judge(first, fate, `approval ${edit} approved ${withUser} sent ${sentTo ?? withUser}`)
        if (fate === 'refuse') {
          expect(first.answer.status).toBe(403)
          return
        }
        expect(first.ops).toEqual([{ op: 'share', sub: 'alice', path: 'README.md' }])
        // The same approval again (a fresh proof, so not a proof replay): consumed, refused.
        const again = await send()
        judge(again, 'refuse', `approval ${edit} used twice`)
        expect((again.answer.json as { code?: string }).code).toBe('ERR_APPROVAL_USED')
      }),
      { ...fuzzReplay, numRuns: 400, interruptAfterTimeLimit: 4000 },
    )
  }, 30_000)
})
