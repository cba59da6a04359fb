/**
 * Bad input, table-driven (issue 2, "Bad input"): any malformed header, token, proof or body gets
 * 400/401/403 with the right challenge — never a 500, never a crash, never a tool run. Every row
 * carries a write_file call to a path under `malformed/`; at the end no such file exists, and the
 * drive still serves an honest call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, base64url } from 'jose'
import { expectChallenge, startFixture } from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { dpopChallenge, rawHttp } from './support/http.js'
import type { HttpAnswer } from './support/http.js'
import { toolCall, toolText } from './support/mcp.js'
import type { McpCaller } from './support/mcp.js'
import { bindingOf, defaultProofClaims, rawProof } from './support/proof.js'

let fx: Fixture
let alice: McpCaller
beforeAll(async () => {
  fx = await startFixture()
  alice = await fx.caller()
  expect((await alice.connect()).status).toBe(200)
})
afterAll(async () => {
  await fx?.close()
})

let row = 0
const writeMsg = () => toolCall('write_file', { path: `malformed/row-${row++}.txt`, content: 'x' })
const b64 = (v: unknown) => base64url.encode(typeof v === 'string' ? v : JSON.stringify(v))

/** The common assertion: a 4xx, never 500, no result; 401s carry a DPoP challenge. */
function expectRefusedCleanly(answer: HttpAnswer, allowed: number[], error?: string) {
  const where = `${answer.status} ${answer.headers.get('www-authenticate') ?? ''} ${answer.text.slice(0, 200)}`
  expect(allowed, where).toContain(answer.status)
  expect(
    answer.messages.some((m) => 'result' in m),
    where,
  ).toBe(false)
  if (answer.status === 401) {
    if (error !== undefined) expectChallenge(fx, answer, { status: 401, error })
    else {
      const ch = dpopChallenge(answer)
      expect(ch, where).toBeDefined()
      expect(ch!.params.resource_metadata, where).toBe(fx.metadataUrl)
      expect(ch!.params.error, where).toMatch(/^(invalid_token|invalid_dpop_proof)$/)
    }
  }
}

describe('malformed Authorization headers → 401 invalid_token', () => {
  const cases: [string, () => string | string[]][] = [
    ['scheme only', () => 'DPoP'],
    ['scheme and space', () => 'DPoP '],
    ['one segment', () => 'DPoP abc'],
    ['two segments', () => 'DPoP abc.def'],
    ['three garbage segments', () => 'DPoP a.b.c'],
    ['non-base64url characters', () => 'DPoP !!!.###.$$$'],
    ['token followed by junk', () => `DPoP ${alice.token} junk`],
    ['two tokens, comma-joined', () => `DPoP ${alice.token}, DPoP ${alice.token}`],
    ['Basic', () => 'Basic YWxpY2U6c2VjcmV0'],
    ['unknown scheme', () => `Token ${alice.token}`],
    ['very long token', () => `DPoP ${'A'.repeat(6000)}.${'B'.repeat(6000)}.C`],
    ['header not JSON', () => `DPoP ${b64('{')}.${b64({})}.AAAA`],
    ['header a JSON array', () => `DPoP ${b64([1])}.${b64({})}.AAAA`],
    ['payload not JSON', () => `DPoP ${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64('nope')}.AAAA`],
    ['five segments (JWE shape)', () => 'DPoP a.b.c.d.e'],
    ['two Authorization header lines', () => [`DPoP ${alice.token}`, `DPoP ${alice.token}`]],
  ]
  it.each(cases)('%s', async (_label, value) => {
    const msg = writeMsg()
    const answer = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: {
        authorization: value(),
        dpop: await alice.proofFor('POST', msg),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': alice.sessionId!,
        'mcp-protocol-version': alice.protocolVersion,
      },
      body: JSON.stringify(msg),
    })
    expectRefusedCleanly(answer, [401], 'invalid_token')
  })
})

describe('well-signed tokens with ill-typed claims → 401 invalid_token', () => {
  const claims: [string, Record<string, unknown>][] = [
    ['aud a number', { aud: 42 }],
    ['exp a string', { exp: 'tomorrow' }],
    ['iat a string', { iat: 'now' }],
    ['sub a number', { sub: 7 }],
    ['sub an object', { sub: { id: 'alice' } }],
    ['client_id an array', { client_id: ['a'] }],
    ['scope a number', { scope: 5 }],
    ['scope an array', { scope: ['drive:read', 'drive:write'] }],
    ['cnf a string', { cnf: 'jkt' }],
    ['cnf.jkt a number', { cnf: { jkt: 1 } }],
    ['cnf.jkt empty', { cnf: { jkt: '' } }],
    ['acr a number', { acr: 2 }],
    ['auth_time a string', { auth_time: 'yesterday' }],
    ['authorization_details an object', { authorization_details: { type: 'mcp_tool_call' } }],
    ['authorization_details a string', { authorization_details: 'share everything' }],
    ['iss a number', { iss: 1 }],
    ['jti a number', { jti: 1 }],
  ]
  it.each(claims)('%s', async (_label, over) => {
    const bad = await fx.issuer.mint({ jkt: alice.key.jkt, claims: over })
    const answer = await alice.send(writeMsg(), { token: bad })
    expectRefusedCleanly(answer, [401], 'invalid_token')
  })

  it('a signed token whose payload is a JSON array', async () => {
    const { CompactSign } = await import('jose')
    // Signed with a throwaway key: the point is that parsing never crashes the server.
    const { privateKey } = await (await import('jose')).generateKeyPair('ES256')
    const token = await new CompactSign(new TextEncoder().encode('[1,2,3]'))
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .sign(privateKey)
    expectRefusedCleanly(await alice.send(writeMsg(), { token }), [401], 'invalid_token')
  })

  it('an HS256 token signed with the issuer public JWK as the secret (key confusion)', async () => {
    const jwks = (await (await fetch(`${fx.issuer.url}/jwks`)).json()) as { keys: unknown[] }
    const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]))
    const token = await new SignJWT({
      iss: fx.issuer.url,
      sub: 'alice',
      aud: fx.resource,
      client_id: 'x',
      scope: 'drive:write',
      cnf: { jkt: alice.key.jkt },
      jti: 'k',
    })
      .setProtectedHeader({
        alg: 'HS256',
        typ: 'at+jwt',
        kid: (jwks.keys[0] as { kid: string }).kid,
      })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(secret)
    expectRefusedCleanly(await alice.send(writeMsg(), { token }), [401], 'invalid_token')
  })
})

describe('malformed proofs → 401 invalid_dpop_proof', () => {
  const signed = async (header: Record<string, unknown>, claims: Record<string, unknown>) =>
    rawProof({ header, claims, key: alice.key.keyPair.privateKey })
  const hdr = () => ({ typ: 'dpop+jwt', alg: 'ES256', jwk: alice.key.publicJwk })
  const honest = async (msg: Record<string, unknown>) =>
    defaultProofClaims({
      htm: 'POST',
      htu: fx.resource,
      accessToken: alice.token,
      mcp: await bindingOf(msg),
    })

  const cases: [string, (msg: Record<string, unknown>) => Promise<string>][] = [
    ['empty', async () => ''],
    ['one character', async () => 'x'],
    ['three garbage segments', async () => 'a.b.c'],
    ['only dots', async () => '..'],
    ['header not JSON', async () => `${b64('{')}.${b64({})}.AAAA`],
    ['header jwk a string', async (m) => signed({ ...hdr(), jwk: 'key' }, await honest(m))],
    [
      'jwk EC without x',
      async (m) =>
        signed(
          { ...hdr(), jwk: { kty: 'EC', crv: 'P-256', y: alice.key.publicJwk.y } },
          await honest(m),
        ),
    ],
    [
      'jwk curve P-384 with ES256',
      async (m) =>
        signed({ ...hdr(), jwk: { ...alice.key.publicJwk, crv: 'P-384' } }, await honest(m)),
    ],
    [
      'jwk kty RSA garbage',
      async (m) => signed({ ...hdr(), jwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }, await honest(m)),
    ],
    ['alg a number', async (m) => `${b64({ ...hdr(), alg: 7 })}.${b64(await honest(m))}.AAAA`],
    [
      'payload a JSON array',
      async () => {
        const { CompactSign } = await import('jose')
        return new CompactSign(new TextEncoder().encode('[1]'))
          .setProtectedHeader(hdr())
          .sign(alice.key.keyPair.privateKey)
      },
    ],
    ['htu a number', async (m) => signed(hdr(), { ...(await honest(m)), htu: 1 })],
    ['htm an array', async (m) => signed(hdr(), { ...(await honest(m)), htm: ['POST'] })],
    ['jti a number', async (m) => signed(hdr(), { ...(await honest(m)), jti: 12345 })],
    ['jti empty', async (m) => signed(hdr(), { ...(await honest(m)), jti: '' })],
    ['iat huge', async (m) => signed(hdr(), { ...(await honest(m)), iat: 1e20 })],
    ['iat negative', async (m) => signed(hdr(), { ...(await honest(m)), iat: -1 })],
    ['iat NaN-ish string', async (m) => signed(hdr(), { ...(await honest(m)), iat: 'NaN' })],
    ['ath a number', async (m) => signed(hdr(), { ...(await honest(m)), ath: 5 })],
    ['mcp null', async (m) => signed(hdr(), { ...(await honest(m)), mcp: null })],
    [
      'mcp an array',
      async (m) => signed(hdr(), { ...(await honest(m)), mcp: [await bindingOf(m)] }),
    ],
    [
      'mcp.method a number',
      async (m) =>
        signed(hdr(), { ...(await honest(m)), mcp: { ...(await bindingOf(m)), method: 5 } }),
    ],
    [
      'mcp.args a number',
      async (m) =>
        signed(hdr(), { ...(await honest(m)), mcp: { ...(await bindingOf(m)), args: 5 } }),
    ],
    [
      'mcp.args an object',
      async (m) =>
        signed(hdr(), {
          ...(await honest(m)),
          mcp: { ...(await bindingOf(m)), args: (m.params as { arguments: unknown }).arguments },
        }),
    ],
    [
      'mcp with response and method',
      async (m) =>
        signed(hdr(), { ...(await honest(m)), mcp: { ...(await bindingOf(m)), response: m.id } }),
    ],
    [
      'proof JSON padded with a BOM',
      async (m) => `${b64('\uFEFF' + JSON.stringify(hdr()))}.${b64(await honest(m))}.AAAA`,
    ],
  ]
  it.each(cases)('%s', async (_label, make) => {
    const msg = writeMsg()
    const answer = await alice.send(msg, { proof: await make(msg) })
    expectRefusedCleanly(answer, [401], 'invalid_dpop_proof')
  })
})

describe('malformed bodies → 400 (before credentials), no tool run', () => {
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)
  const call = (rest: string) => `{"jsonrpc":"2.0","id":1,${rest}}`
  const cases: [string, string | Uint8Array, number[]][] = [
    ['empty', '', [400]],
    ['not JSON', 'hello', [400]],
    ['truncated JSON', '{"jsonrpc":"2.0","id":1,"method":"tools/ca', [400]],
    ['null', 'null', [400]],
    ['number', '1', [400]],
    ['string', '"tools/call"', [400]],
    ['true', 'true', [400]],
    ['empty object', '{}', [400]],
    ['jsonrpc 1.0', '{"jsonrpc":"1.0","id":1,"method":"tools/list"}', [400]],
    ['method a number', call('"method":5'), [400]],
    ['id an object', call('"method":"tools/list","id":{"x":1}').replace('"id":1,', ''), [400]],
    ['tools/call without params', call('"method":"tools/call"'), [400]],
    ['tools/call params an array', call('"method":"tools/call","params":["write_file"]'), [400]],
    ['tools/call params null', call('"method":"tools/call","params":null'), [400]],
    ['tools/call name missing', call('"method":"tools/call","params":{"arguments":{}}'), [400]],
    ['tools/call name a number', call('"method":"tools/call","params":{"name":7}'), [400]],
    // docs/protocol.md §6.3 digests any JSON value, so these reach the binding check (401) unless
    // the server also refuses non-object arguments up front (400): both are clean refusals.
    [
      'arguments a string',
      call('"method":"tools/call","params":{"name":"write_file","arguments":"x"}'),
      [400, 401],
    ],
    [
      'arguments an array',
      call('"method":"tools/call","params":{"name":"write_file","arguments":[1]}'),
      [400, 401],
    ],
    [
      'arguments 5000 levels deep',
      call(`"method":"tools/call","params":{"name":"write_file","arguments":${deep(5000)}}`),
      [400, 401, 403],
    ],
    [
      'number too large for JSON',
      call(
        '"method":"tools/call","params":{"name":"write_file","arguments":{"path":"malformed/big.txt","content":"x","n":1e400}}',
      ),
      [400, 401, 403],
    ],
    [
      'lone surrogate in arguments',
      call(
        '"method":"tools/call","params":{"name":"write_file","arguments":{"path":"malformed/sur.txt","content":"\\ud800"}}',
      ),
      [400, 401, 403],
    ],
    [
      'invalid UTF-8 bytes',
      new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      [400],
    ],
    [
      'duplicate keys',
      call(
        '"method":"tools/call","params":{"name":"read_file","name":"write_file","arguments":{"path":"malformed/dup.txt","content":"x"}}',
      ),
      [400, 401, 403],
    ],
    [
      '__proto__ in arguments',
      call(
        '"method":"tools/call","params":{"name":"write_file","arguments":{"__proto__":{"path":"malformed/proto.txt"},"content":"x"}}',
      ),
      [400, 401, 403],
    ],
  ]
  it.each(cases)('%s', async (_label, body, allowed) => {
    // Honest credentials and a proof bound to some write: the body is what is wrong.
    const msg = writeMsg()
    const proof = await alice.proofFor('POST', msg)
    const answer = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: {
        authorization: `DPoP ${alice.token}`,
        dpop: proof,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': alice.sessionId!,
        'mcp-protocol-version': alice.protocolVersion,
      },
      body,
    })
    expectRefusedCleanly(answer, allowed)
  })

  it('the same bad bodies without credentials are still 400 (not a 401 that leaks nothing, not a 500)', async () => {
    for (const body of [
      '',
      'hello',
      'null',
      '{}',
      '[]',
      call('"method":"tools/call","params":{"name":7}'),
    ]) {
      const answer = await rawHttp({
        method: 'POST',
        url: fx.url,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body,
      })
      expect(answer.status, `${body} → ${answer.status} ${answer.text}`).toBe(400)
    }
  })
})

describe('odd methods and headers', () => {
  it.each(['PUT', 'PATCH'])('%s on /mcp is 405, never a tool run', async (method) => {
    const msg = writeMsg()
    const answer = await rawHttp({
      method,
      url: fx.url,
      headers: {
        authorization: `DPoP ${alice.token}`,
        dpop: await alice.proofFor(method, msg),
        'content-type': 'application/json',
      },
      body: JSON.stringify(msg),
    })
    expect(answer.status).toBe(405)
  })

  it('a session id full of odd characters is 404 or 400, never 500', async () => {
    for (const id of ['x'.repeat(4000), '../../etc/passwd', '%00', ' ']) {
      const answer = await alice.send(writeMsg(), { sessionId: id })
      expect([400, 404]).toContain(answer.status)
    }
  })
})

describe('after all of the above', () => {
  it('no malformed row ran a tool, and the drive still serves an honest call', async () => {
    const files = await fx.files('alice')
    expect(files.filter((f) => f.path.startsWith('malformed/'))).toEqual([])
    const who = JSON.parse(toolText(await alice.callTool('whoami'))) as { sub: string }
    expect(who.sub).toBe('alice')
  })
})
