/**
 * The DPoP proof and its binding to the one JSON-RPC message in the body: every broken property
 * gets 401 invalid_dpop_proof and the write never happens; the honest proof for the same call,
 * sent right after, succeeds (so each refusal is about the one property the test broke).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportJWK, generateKeyPair } from 'jose'
import {
  bindingMismatch,
  expectChallenge,
  invalidProof,
  replayed,
  startFixture,
  uniquePath,
} from './support/drive.js'
import type { Expected, Fixture } from './support/drive.js'
import { McpCaller, toolCall, toolText } from './support/mcp.js'
import {
  argsDigest,
  bindingOf,
  defaultProofClaims,
  newCallerKey,
  rawProof,
} from './support/proof.js'
import type { CallerKey } from './support/proof.js'

let fx: Fixture
beforeAll(async () => {
  fx = await startFixture()
})
afterAll(async () => {
  await fx?.close()
})

const now = () => Math.floor(Date.now() / 1000)

/** A connected alice with her own key. */
async function alice(): Promise<McpCaller> {
  const c = await fx.caller()
  const init = await c.connect()
  expect(init.status).toBe(200)
  return c
}

/** The honest proof claims for a message, for raw proofs to tamper with. */
async function honestClaims(c: McpCaller, msg: Record<string, unknown>) {
  return defaultProofClaims({
    htm: 'POST',
    htu: fx.resource,
    accessToken: c.token,
    mcp: await bindingOf(msg),
  })
}

/** Assert refused + not written, then the honest call with the same body writes. */
async function refusedThenControl(
  c: McpCaller,
  path: string,
  send: (msg: Record<string, unknown>) => Promise<Awaited<ReturnType<McpCaller['send']>>>,
  expected: Expected = invalidProof,
) {
  const content = 'x'
  const msg = toolCall('write_file', { path, content })
  const answer = await send(msg)
  expectChallenge(fx, answer, expected)
  expect(await fx.file('alice', path)).toBeUndefined()
  const ok = await c.send(toolCall('write_file', { path, content }))
  toolText(ok)
  expect(await fx.read('alice', path)).toBe(content)
}

describe('replay', () => {
  it('a proof is accepted once; the replayed proof is refused and changes nothing', async () => {
    const c = await alice()
    const path = uniquePath('replay')
    const msg = toolCall('write_file', { path, content: 'v1' })
    const proof = await c.proofFor('POST', msg)
    toolText(await c.send(msg, { proof }))
    expect(await fx.read('alice', path)).toBe('v1')
    toolText(await c.send(toolCall('write_file', { path, content: 'v2' })))
    // The exact same request again (same proof, same body): a captured request replayed.
    const replay = await c.send(msg, { proof })
    expectChallenge(fx, replay, replayed)
    expect(await fx.read('alice', path)).toBe('v2')
    // Also outside the session (a replay on a fresh initialize cannot reuse it either).
    const again = await c.send(msg, { proof, sessionId: null })
    expect(again.status).toBeGreaterThanOrEqual(400)
    expect(again.status).toBeLessThan(500)
    expect(await fx.read('alice', path)).toBe('v2')
  })
})

describe('replay under concurrency', () => {
  it('the same proof sent 12 times at once is accepted exactly once', async () => {
    const c = await alice()
    const path = uniquePath('race')
    const msg = toolCall('write_file', { path, content: 'raced' })
    const proof = await c.proofFor('POST', msg)
    const answers = await Promise.all(Array.from({ length: 12 }, () => c.send(msg, { proof })))
    const statuses = answers.map((a) => a.status).sort()
    expect(statuses.filter((s) => s === 200)).toHaveLength(1)
    for (const a of answers.filter((x) => x.status !== 200)) expectChallenge(fx, a, replayed)
  })
})

describe('call binding (mcp claim)', () => {
  it('arguments changed under a proof are refused', async () => {
    const c = await alice()
    const path = uniquePath('args')
    const signed = toolCall('write_file', { path, content: 'approved text' })
    const proof = await c.proofFor('POST', signed)
    const tampered = {
      ...signed,
      params: { name: 'write_file', arguments: { path, content: 'evil' } },
    }
    const answer = await c.send(tampered, { proof })
    expectChallenge(fx, answer, bindingMismatch)
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: that very proof with the body it was made for.
    toolText(await c.send(signed, { proof }))
    expect(await fx.read('alice', path)).toBe('approved text')
  })

  it('a proof for one tool is refused on another (same arguments)', async () => {
    const c = await alice()
    const path = uniquePath('swap')
    await refusedThenControl(
      c,
      path,
      async (msg) => {
        const args = (msg.params as { arguments: unknown }).arguments
        const mcp = { method: 'tools/call', name: 'read_file', args: await argsDigest(args) }
        return c.send(msg, { proofInput: { mcp } })
      },
      bindingMismatch,
    )
  })

  it('a proof naming another JSON-RPC method is refused', async () => {
    const c = await alice()
    for (const method of ['tools/list', 'prompts/get', 'initialize']) {
      const path = uniquePath('method')
      await refusedThenControl(
        c,
        path,
        async (msg) => {
          const mcp =
            method === 'tools/list'
              ? { method }
              : {
                  method,
                  name: 'write_file',
                  args: ((await bindingOf(msg)) as { args: string }).args,
                }
          return c.send(msg, { proofInput: { mcp } })
        },
        bindingMismatch,
      )
    }
  })

  it('a POST proof without an mcp claim is refused', async () => {
    const c = await alice()
    await refusedThenControl(
      c,
      uniquePath('nomcp'),
      (msg) => c.send(msg, { proofInput: { mcp: undefined } }),
      bindingMismatch,
    )
  })

  it('a binding with extra or missing members is refused', async () => {
    const c = await alice()
    await refusedThenControl(
      c,
      uniquePath('extra'),
      async (msg) => {
        const b = (await bindingOf(msg)) as Record<string, unknown>
        return c.send(msg, {
          proofInput: { mcp: { method: b.method as string, name: b.name as string } },
        })
      },
      bindingMismatch,
    )
    await refusedThenControl(
      c,
      uniquePath('digest-of-empty'),
      async (msg) => {
        const mcp = { method: 'tools/call', name: 'write_file', args: await argsDigest({}) }
        return c.send(msg, { proofInput: { mcp } })
      },
      bindingMismatch,
    )
  })

  it('the digest is over canonical JSON: reordered keys in the body still match', async () => {
    const c = await alice()
    const path = uniquePath('jcs')
    const msg = toolCall('write_file', { path, content: 'é ☃ "q"' })
    const proof = await c.proofFor('POST', msg)
    const reordered = `{"params":{"arguments":{"content":"é ☃ \\"q\\"","path":${JSON.stringify(path)}},"name":"write_file"},"method":"tools/call","id":${JSON.stringify(msg.id)},"jsonrpc":"2.0"}`
    toolText(await c.send(msg, { proof, rawBody: reordered }))
    expect(await fx.read('alice', path)).toBe('é ☃ "q"')
  })
})

describe('digests agree with an independent SHA-256 + JCS at every size', () => {
  it('arguments across SHA-256 padding boundaries and the 16 KiB fast-path split all bind', async () => {
    const c = await alice()
    // JCS of {content, path} is 30 + path + content bytes; sweeping content length walks the
    // canonical form across every 64-byte block boundary, and around 16 KiB where core switches
    // hashing implementations. The digest here comes from Web Crypto, not from core.
    const lengths = [
      ...Array.from({ length: 140 }, (_, i) => i),
      ...[16 * 1024 - 80, 16 * 1024 - 60, 16 * 1024 - 59, 16 * 1024 - 40, 16 * 1024 + 1, 70_000],
    ]
    const results = await Promise.all(
      lengths.map(async (n) => {
        const path = `tests/len-${n}.txt`
        const answer = await c.send(toolCall('write_file', { path, content: 'z'.repeat(n) }))
        return [n, answer.status] as const
      }),
    )
    expect(results.filter(([, status]) => status !== 200)).toEqual([])
  })

  it('JCS edge cases (key order by UTF-16, number forms, escapes) bind', async () => {
    const c = await alice()
    const args = {
      path: uniquePath('jcs-edge'),
      content: 'line\nbreak \u2028 \t "quoted" \\ é 😀 \u0000',
      '\u20ac': 1e21,
      '\ud83d\ude00': 0.1 + 0.2,
      a: -0,
      b: 1e-7,
      c: [true, null, { z: 1, y: 2 }],
    }
    const answer = await c.send(toolCall('write_file', args))
    // The binding matched (no 401); the tool may ignore or refuse the unknown keys.
    expect(answer.status, answer.text.slice(0, 300)).toBe(200)
  })
})

describe('htu, htm, ath', () => {
  const htus = (): [string, string][] => {
    const u = new URL(fx.resource)
    return [
      ['another path', `${u.origin}/other`],
      ['another port', `${u.protocol}//${u.hostname}:${Number(u.port) + 1}${u.pathname}`],
      ['another host name', `${u.protocol}//localhost:${u.port}${u.pathname}`],
      ['https instead of http', `https://${u.host}${u.pathname}`],
      ['trailing slash', `${fx.resource}/`],
      ['with a query', `${fx.resource}?x=1`],
      ['with an empty query', `${fx.resource}?`],
      ['with a fragment', `${fx.resource}#f`],
    ]
  }

  it.each([0, 1, 2, 3, 4, 5, 6, 7])('wrong htu #%i is refused', async (i) => {
    const [label, htu] = htus()[i]!
    const c = await alice()
    await refusedThenControl(c, uniquePath(`htu-${label.replace(/\W+/g, '-')}`), (msg) =>
      c.send(msg, { proofInput: { htu } }),
    )
  })

  it('control: htu scheme and host are compared case-insensitively', async () => {
    const c = await alice()
    const u = new URL(fx.resource)
    const htu = `HTTP://${u.host.toUpperCase()}${u.pathname}`
    const path = uniquePath('htu-case')
    toolText(await c.send(toolCall('write_file', { path, content: 'y' }), { proofInput: { htu } }))
    expect(await fx.read('alice', path)).toBe('y')
  })

  it('wrong htm is refused', async () => {
    const c = await alice()
    for (const htm of ['GET', 'PUT', 'DELETE']) {
      await refusedThenControl(c, uniquePath(`htm-${htm}`), (msg) =>
        c.send(msg, { proofInput: { htm } }),
      )
    }
  })

  it('wrong or missing ath is refused', async () => {
    const c = await alice()
    const other = await fx.token(c.key)
    await refusedThenControl(c, uniquePath('ath-other'), (msg) =>
      c.send(msg, { proofInput: { accessToken: other } }),
    )
    await refusedThenControl(c, uniquePath('ath-missing'), async (msg) => {
      const claims = { ...(await honestClaims(c, msg)), ath: undefined }
      const proof = await rawProof({
        header: { typ: 'dpop+jwt', alg: 'ES256', jwk: c.key.publicJwk },
        claims,
        key: c.key.keyPair.privateKey,
      })
      return c.send(msg, { proof })
    })
  })
})

describe('iat window (60 s past, 5 s future)', () => {
  it('stale and future proofs are refused; proofs inside the window are accepted', async () => {
    const c = await alice()
    for (const offset of [-3600, -120, -75, 60, 30, 3600]) {
      await refusedThenControl(c, uniquePath(`iat${offset}`), (msg) =>
        c.send(msg, { proofInput: { iat: now() + offset } }),
      )
    }
    for (const offset of [-40, -1, 2]) {
      const path = uniquePath(`iat-ok${offset}`)
      toolText(
        await c.send(toolCall('write_file', { path, content: 'in window' }), {
          proofInput: { iat: now() + offset },
        }),
      )
      expect(await fx.read('alice', path)).toBe('in window')
    }
  })
})

describe('proof header and signature', () => {
  type Tamper = (
    c: McpCaller,
    claims: Record<string, unknown>,
  ) => Promise<{
    header: Record<string, unknown>
    claims: Record<string, unknown>
    key?: CryptoKey | Uint8Array
  }>
  const honest: Tamper = async (c, claims) => ({
    header: { typ: 'dpop+jwt', alg: 'ES256', jwk: c.key.publicJwk },
    claims,
    key: c.key.keyPair.privateKey,
  })
  const secret = new TextEncoder().encode('a-shared-secret-a-shared-secret!!')

  const cases: [string, Tamper][] = [
    [
      'alg none',
      async (c, claims) => ({
        header: { typ: 'dpop+jwt', alg: 'none', jwk: c.key.publicJwk },
        claims,
      }),
    ],
    [
      'HS256 with the public jwk in the header',
      async (c, claims) => ({
        header: { typ: 'dpop+jwt', alg: 'HS256', jwk: c.key.publicJwk },
        claims,
        key: secret,
      }),
    ],
    [
      'HS256 with a symmetric (oct) jwk',
      async (_c, claims) => ({
        header: {
          typ: 'dpop+jwt',
          alg: 'HS256',
          jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') },
        },
        claims,
        key: secret,
      }),
    ],
    [
      'RS256 (not in the allowlist)',
      async (_c, claims) => {
        const rsa = await generateKeyPair('RS256', { extractable: true })
        return {
          header: { typ: 'dpop+jwt', alg: 'RS256', jwk: await exportJWK(rsa.publicKey) },
          claims,
          key: rsa.privateKey,
        }
      },
    ],
    [
      'jwk carrying the private key',
      () =>
        Promise.reject(new Error('handled in the test body: the token must be bound to that key')),
    ],
    [
      'typ JWT',
      async (c, claims) => ({
        ...(await honest(c, claims)),
        header: { typ: 'JWT', alg: 'ES256', jwk: c.key.publicJwk },
      }),
    ],
    [
      'typ missing',
      async (c, claims) => ({
        ...(await honest(c, claims)),
        header: { alg: 'ES256', jwk: c.key.publicJwk },
      }),
    ],
    [
      'jwk missing',
      async (c, claims) => ({
        ...(await honest(c, claims)),
        header: { typ: 'dpop+jwt', alg: 'ES256' },
      }),
    ],
    [
      'signed by another key than the header jwk',
      async (c, claims) => ({
        ...(await honest(c, claims)),
        key: (await generateKeyPair('ES256')).privateKey,
      }),
    ],
    ['jti missing', async (c, claims) => honest(c, { ...claims, jti: undefined })],
    ['iat missing', async (c, claims) => honest(c, { ...claims, iat: undefined })],
    ['htm missing', async (c, claims) => honest(c, { ...claims, htm: undefined })],
    ['htu missing', async (c, claims) => honest(c, { ...claims, htu: undefined })],
    ['iat as a string', async (c, claims) => honest(c, { ...claims, iat: String(claims.iat) })],
    [
      'mcp as a string',
      async (c, claims) => honest(c, { ...claims, mcp: JSON.stringify(claims.mcp) }),
    ],
  ]

  it.each(cases)('%s is refused', async (label, tamper) => {
    let c = await alice()
    if (label === 'jwk carrying the private key') {
      // Bind the token to the private-jwk key so that only the private member is wrong.
      const k = await generateKeyPair('ES256', { extractable: true })
      const pub = await exportJWK(k.publicKey)
      const { calculateJwkThumbprint } = await import('jose')
      const key: CallerKey = {
        keyPair: k as CryptoKeyPair,
        publicJwk: pub,
        jkt: await calculateJwkThumbprint(pub),
      }
      c = new McpCaller({ url: fx.url, resource: fx.resource }, key, await fx.token(key))
      expect((await c.connect()).status).toBe(200)
      const path = uniquePath('privjwk')
      const msg = toolCall('write_file', { path, content: 'x' })
      const proof = await rawProof({
        header: { typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(k.privateKey) },
        claims: await honestClaims(c, msg),
        key: k.privateKey,
      })
      expectChallenge(fx, await c.send(msg, { proof }), invalidProof)
      expect(await fx.file('alice', path)).toBeUndefined()
      toolText(await c.send(msg))
      expect(await fx.read('alice', path)).toBe('x')
      return
    }
    await refusedThenControl(
      c,
      uniquePath('hdr'),
      async (msg) => {
        const t = await tamper(c, await honestClaims(c, msg))
        return c.send(msg, { proof: await rawProof(t) })
      },
      // A non-object `mcp` is no binding at all: refused at the binding step.
      label === 'mcp as a string' ? bindingMismatch : invalidProof,
    )
  })

  it('control: an honest raw proof (same maker as the refusals) is accepted', async () => {
    const c = await alice()
    const path = uniquePath('raw-ok')
    const msg = toolCall('write_file', { path, content: 'raw' })
    const proof = await rawProof({
      header: { typ: 'dpop+jwt', alg: 'ES256', jwk: c.key.publicJwk },
      claims: await honestClaims(c, msg),
      key: c.key.keyPair.privateKey,
    })
    toolText(await c.send(msg, { proof }))
    expect(await fx.read('alice', path)).toBe('raw')
  })

  it.each(['EdDSA', 'Ed25519'])(
    'control: an Ed25519 proof with alg %s is accepted',
    async (alg) => {
      const key = await newCallerKey('Ed25519')
      const c = new McpCaller({ url: fx.url, resource: fx.resource }, key, await fx.token(key))
      const initMsg = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: c.protocolVersion,
          capabilities: {},
          clientInfo: { name: 't', version: '0' },
        },
      }
      const edProof = async (msg: Record<string, unknown>) =>
        rawProof({
          header: { typ: 'dpop+jwt', alg, jwk: key.publicJwk },
          claims: await defaultProofClaims({
            htm: 'POST',
            htu: fx.resource,
            accessToken: c.token,
            mcp: await bindingOf(msg),
          }),
          key: key.keyPair.privateKey,
        })
      const init = await c.send(initMsg, { proof: await edProof(initMsg), sessionId: null })
      expect(init.status, init.text).toBe(200)
      c.sessionId = init.headers.get('mcp-session-id') ?? undefined
      const note = { jsonrpc: '2.0', method: 'notifications/initialized' }
      expect((await c.send(note, { proof: await edProof(note) })).status).toBe(202)
      const call = toolCall('whoami')
      const who = JSON.parse(toolText(await c.send(call, { proof: await edProof(call) }))) as {
        jkt: string
      }
      expect(who.jkt).toBe(key.jkt)
    },
  )
})
