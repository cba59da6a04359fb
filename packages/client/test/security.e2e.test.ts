import { devInteraction } from '@callproof/dev-auth-server'
import { decodeProtectedHeader, decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bindingFor } from '@callproof/core'
import {
  connect,
  generateProofKeyPair,
  MemoryTokenStore,
  sendWithProof,
  type Interaction,
} from '../src/index.js'
import { DpopNonces } from '../src/fetch.js'
import { asMetadata, startFake, unauthorized, type Fake } from './support/fake.js'
import { open, text } from './support/mcp.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

const never: Interaction = {
  redirectUri: () => 'http://127.0.0.1/callback',
  authorize: () => Promise.reject(new Error('no authorization expected in this test')),
}

const listTools = (id: number) => ({
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  },
  body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }),
})

describe('a proof on every request', () => {
  it('binds each proof to the exact body sent, with a fresh jti', async () => {
    const seen: Array<{ body: string; proof: string | null; auth: string | null }> = []
    const recording: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers)
      if (init?.method === 'POST') {
        seen.push({
          body: String(init.body),
          proof: headers.get('dpop'),
          auth: headers.get('authorization'),
        })
      }
      return fetch(input, init)
    }
    const { client } = await open(world.drive.url, {
      interaction: devInteraction({ user: 'bob' }),
      development: true,
      scopes: ['drive:read'],
      fetch: recording,
    })
    await client.callTool({ name: 'read_file', arguments: { path: 'README.md' } })
    const signed = seen.filter((s) => s.proof !== null && s.auth?.startsWith('DPoP '))
    expect(signed.length).toBeGreaterThanOrEqual(3)
    const jtis = new Set<string>()
    for (const s of signed) {
      const claims = decodeJwt(s.proof!)
      expect(decodeProtectedHeader(s.proof!).typ).toBe('dpop+jwt')
      expect(claims.mcp).toEqual(await bindingFor(JSON.parse(s.body)))
      jtis.add(claims.jti as string)
    }
    expect(jtis.size).toBe(signed.length)
    const call = signed.find((s) => s.body.includes('tools/call'))!
    expect(decodeJwt(call.proof!).mcp).toMatchObject({ method: 'tools/call', name: 'read_file' })
    await client.close()
  })

  it('works with an Ed25519 key', async () => {
    const client = await connect(world.drive.url, {
      interaction: devInteraction({ user: 'bob' }),
      development: true,
      keyAlgorithm: 'Ed25519',
      scopes: ['drive:read'],
    })
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.sub).toBe('bob')
    await client.close()
  })
})

describe('DPoP nonces', () => {
  let nonceWorld: World
  beforeAll(async () => {
    nonceWorld = await startWorld({ nonce: true })
  })
  afterAll(() => nonceWorld?.close())

  it('puts the server-supplied nonce in every proof and never needs a second challenge', async () => {
    let nonceChallenges = 0
    const proofNonces: unknown[] = []
    const counting: typeof fetch = async (input, init) => {
      const proof = new Headers(init?.headers).get('dpop')
      // Only the MCP server's proofs: the authorization server demands no nonce here.
      if (proof && String(input).startsWith(nonceWorld.drive.url))
        proofNonces.push(decodeJwt(proof).nonce)
      const res = await fetch(input, init)
      if ((res.headers.get('www-authenticate') ?? '').includes('use_dpop_nonce')) nonceChallenges++
      return res
    }
    const { client } = await open(nonceWorld.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      fetch: counting,
    })
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'list_files', arguments: {} })
    expect(proofNonces.length).toBeGreaterThanOrEqual(4)
    expect(proofNonces.every((n) => typeof n === 'string' && n.length > 0)).toBe(true)
    expect(nonceChallenges).toBe(0)
    await client.close()
  })

  it('answers use_dpop_nonce with exactly one retry carrying the new nonce', async () => {
    const { client, session } = await open(nonceWorld.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
    })
    const token = (await session.token())!
    const sent: Array<{ nonce: unknown; status: number }> = []
    const nonces = new DpopNonces()
    nonces.set(nonceWorld.drive.url, 'stale-nonce')
    const signer = {
      keyPair: session.options.keyPair,
      nonces,
      fetch: (async (input, init) => {
        const res = await fetch(input, init)
        sent.push({
          nonce: decodeJwt(new Headers(init?.headers).get('dpop')!).nonce,
          status: res.status,
        })
        return res
      }) as typeof fetch,
    }
    const res = await sendWithProof(signer, nonceWorld.drive.url, listTools(1), token)
    expect(res.headers.get('www-authenticate') ?? '').not.toContain('use_dpop_nonce')
    await res.body?.cancel()
    expect(sent).toHaveLength(2)
    expect(sent[0]).toEqual({ nonce: 'stale-nonce', status: 401 })
    expect(sent[1]?.nonce).not.toBe('stale-nonce')
    expect(nonces.get(nonceWorld.drive.url)).toBe(sent[1]?.nonce)
    await client.close()
  })
})

describe('key binding', () => {
  it('a token obtained with one key is useless with another', async () => {
    const { client, session } = await open(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
    })
    const token = (await session.token())!
    const own = await sendWithProof(
      { keyPair: session.options.keyPair, nonces: new DpopNonces() },
      world.drive.url,
      listTools(1),
      token,
    )
    // With its own key the token gets past authentication (the session-less request may be
    // refused by the transport, but not with a credentials challenge).
    expect(own.headers.get('www-authenticate')).toBeNull()
    await own.body?.cancel()
    const thief = { keyPair: await generateProofKeyPair(), nonces: new DpopNonces() }
    const stolen = await sendWithProof(thief, world.drive.url, listTools(2), token)
    expect(stolen.status).toBe(401)
    expect(stolen.headers.get('www-authenticate')).toContain('invalid_dpop_proof')
    await client.close()
  })
})

describe('refusals with typed errors', () => {
  const fakes: Fake[] = []
  afterAll(async () => {
    await Promise.all(fakes.map((f) => f.close()))
  })
  async function fake(routes: Parameters<typeof startFake>[0]) {
    const f = await startFake(routes)
    fakes.push(f)
    return f
  }
  const opts = { interaction: never, development: true }

  it('malformed protected resource metadata → ERR_INVALID_METADATA', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': () => ({
        body: '{not json',
        headers: { 'content-type': 'application/json' },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_INVALID_METADATA',
    })
  })

  it('metadata without authorization_servers → ERR_INVALID_METADATA', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({ body: { resource: `${o}/mcp` } }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_INVALID_METADATA',
    })
  })

  it('metadata for another resource → ERR_RESOURCE_MISMATCH, and no token is sent there', async () => {
    // A hostile server claims to be the drive, hoping for the drive's token.
    const store = new MemoryTokenStore()
    const { client: real } = await open(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      tokenStore: store,
    })
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': () => ({
        body: { resource: world.drive.resource, authorization_servers: [world.issuer] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, { ...opts, tokenStore: store })).rejects.toMatchObject({
      code: 'ERR_RESOURCE_MISMATCH',
    })
    expect(f.requests.some((r) => r.headers.authorization !== undefined)).toBe(false)
    expect(f.requests.some((r) => r.headers.dpop !== undefined)).toBe(false)
    await real.close()
  })

  it('a server naming the real issuer but its own resource never receives the drive token', async () => {
    const store = new MemoryTokenStore()
    const { client: real, session } = await open(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      tokenStore: store,
    })
    const driveToken = (await session.token())!.accessToken
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [world.issuer] },
      }),
    })
    // The dev authorization server issues no token for this unknown resource, so the
    // connection fails; whatever happens, the drive's token never reaches the hostile server.
    await connect(`${f.origin}/mcp`, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      tokenStore: store,
    }).catch(() => undefined)
    for (const r of f.requests) {
      expect(r.headers.authorization ?? '').not.toContain(driveToken)
    }
    await real.close()
  })

  it('authorization server metadata naming another issuer → ERR_ISSUER_MISMATCH', async () => {
    const as = await fake({
      '/.well-known/oauth-authorization-server': asMetadata({ issuer: 'http://127.0.0.1:1' }),
    })
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [as.origin] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_ISSUER_MISMATCH',
    })
  })

  it('a server that accepts none of our proof algorithms → ERR_UNSUPPORTED_ALGORITHM', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: {
          resource: `${o}/mcp`,
          authorization_servers: [world.issuer],
          dpop_signing_alg_values_supported: ['RS256'],
        },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_ALGORITHM',
    })
  })

  it('an authorization server that accepts none of our proof algorithms → ERR_UNSUPPORTED_ALGORITHM', async () => {
    const as = await fake({
      '/.well-known/oauth-authorization-server': asMetadata({
        dpop_signing_alg_values_supported: ['PS256'],
      }),
    })
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [as.origin] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_ALGORITHM',
    })
  })

  it('an authorization server without PKCE S256 → ERR_PKCE_NOT_SUPPORTED', async () => {
    const as = await fake({
      '/.well-known/oauth-authorization-server': asMetadata({
        code_challenge_methods_supported: ['plain'],
      }),
      'POST /register': () => ({
        status: 201,
        body: { client_id: 'c1', token_endpoint_auth_method: 'none' },
      }),
    })
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [as.origin] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({
      code: 'ERR_PKCE_NOT_SUPPORTED',
    })
  })

  it('an authorization response from the wrong issuer (RFC 9207) → ERR_ISSUER_MISMATCH', async () => {
    const as = await fake({
      '/.well-known/oauth-authorization-server': asMetadata({
        authorization_response_iss_parameter_supported: true,
      }),
      'POST /register': () => ({
        status: 201,
        body: { client_id: 'c1', token_endpoint_auth_method: 'none' },
      }),
    })
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [as.origin] },
      }),
    })
    const mixUp: Interaction = {
      redirectUri: () => 'http://127.0.0.1/callback',
      authorize: async (url) => {
        const cb = new URL('http://127.0.0.1/callback')
        cb.searchParams.set('code', 'c')
        cb.searchParams.set('state', url.searchParams.get('state')!)
        cb.searchParams.set('iss', 'https://attacker.example')
        return cb
      },
    }
    await expect(
      connect(`${f.origin}/mcp`, { interaction: mixUp, development: true }),
    ).rejects.toMatchObject({ code: 'ERR_ISSUER_MISMATCH' })
    expect(as.requests.some((r) => r.path === '/token')).toBe(false)
  })

  it('an authorization server on a private address → ERR_UNSAFE_URL (nothing fetched there)', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: ['https://169.254.169.254/'] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
  })

  it('an http authorization server that is not loopback → ERR_UNSAFE_URL', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: ['http://auth.example.com'] },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
  })

  it('a metadata redirect to a link-local address is re-checked → ERR_UNSAFE_URL', async () => {
    const f = await fake({
      '/mcp': unauthorized(),
      '/.well-known/oauth-protected-resource/mcp': () => ({
        status: 302,
        headers: { location: 'http://169.254.169.254/latest/meta-data/' },
      }),
    })
    await expect(connect(`${f.origin}/mcp`, opts)).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
  })

  it('loopback http outside development → ERR_UNSAFE_URL', async () => {
    await expect(connect(world.drive.url, { interaction: never })).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
    })
  })
})
