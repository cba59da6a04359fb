/**
 * The Authorization header and the access token: each wrong token is refused with 401
 * invalid_token (or, for a missing proof, invalid_dpop_proof), and the write it carried never
 * happens. Each refusal sits next to the honest control with the same shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from 'jose'
import {
  expectChallenge,
  invalidProof,
  invalidToken,
  startFixture,
  uniquePath,
} from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { startIssuer } from './support/issuer.js'
import type { MintOptions, TestIssuer } from './support/issuer.js'
import { rawHttp } from './support/http.js'
import { McpCaller, resultOf, toolCall, toolText } from './support/mcp.js'
import { newCallerKey } from './support/proof.js'

let fx: Fixture
let stranger: TestIssuer
beforeAll(async () => {
  fx = await startFixture()
  stranger = await startIssuer()
  stranger.resource = fx.resource
})
afterAll(async () => {
  await fx?.close()
  await stranger?.close()
})

describe('credentials', () => {
  it('control: an honest DPoP call writes the file', async () => {
    const alice = await fx.caller()
    const path = uniquePath('control')
    const answer = await alice.callTool('write_file', { path, content: 'hello' })
    expect(answer.status).toBe(200)
    toolText(answer)
    expect(await fx.read('alice', path)).toBe('hello')
    // The drive found the issuer's keys through its metadata's jwks_uri, over HTTP.
    expect(fx.issuer.jwksFetches).toBeGreaterThan(0)
  })

  it('no credentials at all: 401 with a challenge that has no error code, no write', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const path = uniquePath('nocreds')
    const answer = await alice.send(toolCall('write_file', { path, content: 'x' }), {
      authorization: null,
      proof: null,
    })
    expectChallenge(fx, answer, { status: 401, error: null, code: 'ERR_NO_CREDENTIALS' })
    expect(await fx.file('alice', path)).toBeUndefined()
  })

  it('no credentials on initialize: 401 with no error code', async () => {
    const alice = await fx.caller()
    const answer = await alice.connect({ authorization: null, proof: null })
    expectChallenge(fx, answer, { status: 401, error: null, code: 'ERR_NO_CREDENTIALS' })
    expect(answer.headers.get('mcp-session-id')).toBeNull()
  })

  it('a DPoP-bound token presented as Bearer is refused (with or without a proof)', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const path = uniquePath('bearer')
    const msg = toolCall('write_file', { path, content: 'x' })
    const withProof = await alice.send(msg, { authorization: `Bearer ${alice.token}` })
    expectChallenge(fx, withProof, { ...invalidToken, code: 'ERR_BEARER_NOT_ALLOWED' })
    const withoutProof = await alice.send(msg, {
      authorization: `Bearer ${alice.token}`,
      proof: null,
    })
    expectChallenge(fx, withoutProof, { ...invalidToken, code: 'ERR_BEARER_NOT_ALLOWED' })
    expect(await fx.file('alice', path)).toBeUndefined()
  })

  it('a token without a proof is refused with invalid_dpop_proof, no write', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const path = uniquePath('noproof')
    const answer = await alice.send(toolCall('write_file', { path, content: 'x' }), { proof: null })
    expectChallenge(fx, answer, invalidProof)
    expect(await fx.file('alice', path)).toBeUndefined()
  })

  it('two DPoP header lines are refused, even when both proofs are valid', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const path = uniquePath('twoproofs')
    const msg = toolCall('write_file', { path, content: 'x' })
    const p1 = await alice.proofFor('POST', msg)
    const p2 = await alice.proofFor('POST', msg)
    const headers = {
      authorization: `DPoP ${alice.token}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-session-id': alice.sessionId!,
      'mcp-protocol-version': alice.protocolVersion,
    }
    const twoLines = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: { ...headers, dpop: [p1, p2] },
      body: JSON.stringify(msg),
    })
    expectChallenge(fx, twoLines, invalidProof)
    // fetch folds repeated headers into one comma-joined line: also not one proof.
    const folded = await alice.send(msg, { proof: [p1, p2] })
    expectChallenge(fx, folded, invalidProof)
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: one of those very proofs alone is accepted (so the refusals were about the count).
    const one = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: { ...headers, dpop: p1 },
      body: JSON.stringify(msg),
    })
    expect(one.status).toBe(200)
    expect(resultOf(one)).toBeDefined()
    expect((await fx.file('alice', path))?.size).toBe(1)
  })

  it("another caller's token with the other caller's own key is refused (cnf.jkt mismatch)", async () => {
    const alice = await fx.caller()
    const mallory = await fx.caller({ sub: 'mallory' })
    await mallory.connect()
    const path = uniquePath('stolen')
    // Mallory holds Alice's token and signs a perfect proof with her own key, ath included.
    const answer = await mallory.send(toolCall('write_file', { path, content: 'pwned' }), {
      token: alice.token,
    })
    expectChallenge(fx, answer, invalidProof)
    // And on a fresh connection (initialize), too: no session is opened for her.
    const fresh = new McpCaller({ url: fx.url, resource: fx.resource }, mallory.key, alice.token)
    const init = await fresh.connect()
    expectChallenge(fx, init, invalidProof)
    expect(init.headers.get('mcp-session-id')).toBeNull()
    expect(await fx.file('alice', path)).toBeUndefined()
    expect(await fx.file('mallory', path)).toBeUndefined()
  })
})

describe('bad access tokens: 401 invalid_token, no write', () => {
  const cases: [string, (jkt: string) => Promise<string>][] = [
    ['wrong audience', (jkt) => fx.issuer.mint({ jkt, aud: 'http://127.0.0.1:1/mcp' })],
    ['no audience', (jkt) => fx.issuer.mint({ jkt, aud: null })],
    [
      'audience with a different path',
      (jkt) => fx.issuer.mint({ jkt, aud: fx.resource.replace(/\/mcp$/, '/other') }),
    ],
    ['expired', (jkt) => fx.issuer.mint({ jkt, expiresIn: -120, iatOffset: -900 })],
    ['no exp', (jkt) => fx.issuer.mint({ jkt, claims: { exp: undefined } })],
    [
      'wrongly signed (issuer kid, another key)',
      async (jkt) => fx.issuer.mint({ jkt, signWith: (await generateKeyPair('ES256')).privateKey }),
    ],
    [
      'signature bytes tampered',
      async (jkt) => {
        const t = await fx.issuer.mint({ jkt })
        const [h, p, s] = t.split('.') as [string, string, string]
        const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
        return `${h}.${p}.${flipped}`
      },
    ],
    [
      'payload swapped under a valid signature (scope widened)',
      async (jkt) => {
        const weak = await fx.issuer.mint({ jkt, scope: 'drive:read' })
        const strong = await fx.issuer.mint({ jkt })
        const [h, , s] = weak.split('.') as [string, string, string]
        return `${h}.${strong.split('.')[1]}.${s}`
      },
    ],
    ['unknown kid', (jkt) => fx.issuer.mint({ jkt, kid: 'no-such-key' })],
    [
      'wrong issuer claim (signed by the trusted key)',
      (jkt) => fx.issuer.mint({ jkt, iss: 'http://127.0.0.1:1' }),
    ],
    ['issued by an untrusted issuer', (jkt) => stranger.mint({ jkt })],
    ['unbound (no cnf)', () => fx.issuer.mint({ jkt: null })],
    ['cnf without jkt', () => fx.issuer.mint({ jkt: null, claims: { cnf: { x5t: 'abc' } } })],
    ['wrong typ (JWT)', (jkt) => fx.issuer.mint({ jkt, typ: 'JWT' })],
    ['no typ', (jkt) => fx.issuer.mint({ jkt, typ: null })],
    ['HS256 token', (jkt) => fx.issuer.mintHmac({ jkt })],
    ['alg none token', async (jkt) => fx.issuer.mintNone({ jkt })],
    ['no sub', (jkt) => fx.issuer.mint({ jkt, claims: { sub: undefined } })],
    ['no client_id', (jkt) => fx.issuer.mint({ jkt, claims: { client_id: undefined } })],
  ]

  it.each(cases)('%s', async (_label, makeToken) => {
    const key = await newCallerKey()
    const good = new McpCaller(
      { url: fx.url, resource: fx.resource },
      key,
      await fx.issuer.mint({ jkt: key.jkt } as MintOptions),
    )
    await good.connect()
    const bad = await makeToken(key.jkt)
    const path = uniquePath('badtoken')
    // On an open session: the session is no authentication.
    const onSession = await good.send(toolCall('write_file', { path, content: 'x' }), {
      token: bad,
    })
    expectChallenge(fx, onSession, invalidToken)
    // And on initialize: no session for a bad token.
    const fresh = new McpCaller({ url: fx.url, resource: fx.resource }, key, bad)
    const init = await fresh.connect()
    expectChallenge(fx, init, invalidToken)
    expect(init.headers.get('mcp-session-id')).toBeNull()
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: the honest token, same key, same session, same call → written.
    const ok = await good.send(toolCall('write_file', { path, content: 'ok' }))
    toolText(ok)
    expect(await fx.read('alice', path)).toBe('ok')
  })

  it(
    'a token accepted while valid is refused once it expires (the token cache keeps exp)',
    {
      timeout: 20_000,
    },
    async () => {
      // exp 2 s ahead; the server tolerates 5 s of clock skew (docs/protocol.md §4), so wait past both.
      const c = await fx.caller({ expiresIn: 2 })
      const path = uniquePath('expiring')
      toolText(await c.callTool('write_file', { path, content: 'while valid' }))
      await new Promise((r) => setTimeout(r, 8_500))
      const later = await c.send(toolCall('write_file', { path, content: 'after expiry' }))
      expectChallenge(fx, later, invalidToken)
      expect(await fx.read('alice', path)).toBe('while valid')
    },
  )

  it.each(['application/at+jwt', 'AT+JWT'])(
    'control: token typ %s is accepted (RFC 9068 §2.1)',
    async (typ) => {
      const c = await fx.caller({ typ })
      expect(JSON.parse(toolText(await c.callTool('whoami'))) as unknown).toMatchObject({
        sub: 'alice',
      })
    },
  )

  it('control: a token whose aud is an array containing the resource is accepted', async () => {
    const c = await fx.caller({ aud: ['http://127.0.0.1:1/mcp', fx.resource] })
    const who = JSON.parse(toolText(await c.callTool('whoami'))) as { sub: string }
    expect(who.sub).toBe('alice')
  })
})
