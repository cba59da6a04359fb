// Refusals against a scripted authorization server and MCP server (real HTTP on 127.0.0.1): the
// client's own checks, each with the typed error it gives up with.
import { afterEach, describe, expect, it } from 'vitest'
import { connect, type Interaction } from '../src/index.js'
import { asMetadata, startFake, unauthorized, type Fake, type Route } from './support/fake.js'

const fakes: Fake[] = []
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()))
})

/** An interaction that "approves" at once: code + the request's state, like a redirecting AS. */
function instant(overrides: Record<string, string> = {}): Interaction & { count: number } {
  const interaction = {
    count: 0,
    redirectUri: () => 'http://127.0.0.1/callback',
    authorize: async (url: URL) => {
      interaction.count++
      const cb = new URL('http://127.0.0.1/callback')
      cb.searchParams.set('code', `code-${interaction.count}`)
      cb.searchParams.set('state', url.searchParams.get('state')!)
      for (const [k, v] of Object.entries(overrides)) cb.searchParams.set(k, v)
      return cb
    },
  }
  return interaction
}

async function stack(mcp: Route, tokenType = 'DPoP'): Promise<{ url: string; as: Fake; rs: Fake }> {
  let n = 0
  const as = await startFake({
    '/.well-known/oauth-authorization-server': asMetadata(),
    'POST /register': () => ({
      status: 201,
      body: { client_id: 'c1', token_endpoint_auth_method: 'none' },
    }),
    'POST /token': () => ({
      body: { access_token: `token-${++n}`, token_type: tokenType, expires_in: 300, scope: 'a' },
      headers: { 'cache-control': 'no-store' },
    }),
  })
  const rs = await startFake({
    '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
      body: { resource: `${o}/mcp`, authorization_servers: [as.origin] },
    }),
    '/mcp': mcp,
  })
  fakes.push(as, rs)
  return { url: `${rs.origin}/mcp`, as, rs }
}

describe('refusals', () => {
  it('gives up after a bounded number of authorizations (ERR_CHALLENGE_RETRIES_EXHAUSTED)', async () => {
    let scope = 0
    const { url } = await stack((req, origin) => {
      if (!req.headers.authorization) return unauthorized()(req, origin)
      // Every authorization is answered with a new, larger scope demand: an endless step-up.
      return {
        status: 403,
        headers: { 'www-authenticate': `DPoP error="insufficient_scope", scope="s${++scope}"` },
      }
    })
    const interaction = instant()
    await expect(connect(url, { interaction, development: true })).rejects.toMatchObject({
      code: 'ERR_CHALLENGE_RETRIES_EXHAUSTED',
    })
    expect(interaction.count).toBe(3)
  })

  it('stops at once when the same challenge comes back after it was answered', async () => {
    const { url } = await stack((req, origin) => {
      if (!req.headers.authorization) return unauthorized()(req, origin)
      return {
        status: 403,
        headers: { 'www-authenticate': 'DPoP error="insufficient_scope", scope="admin"' },
      }
    })
    const interaction = instant()
    await expect(connect(url, { interaction, development: true })).rejects.toMatchObject({
      code: 'ERR_CHALLENGE_RETRIES_EXHAUSTED',
    })
    expect(interaction.count).toBe(2)
  })

  it('a final refusal (access_denied) is ERR_ACCESS_DENIED without any authorization', async () => {
    const { url } = await stack((req, origin) => {
      if (!req.headers.authorization) return unauthorized()(req, origin)
      return { status: 403, headers: { 'www-authenticate': 'DPoP error="access_denied"' } }
    })
    const interaction = instant()
    await expect(connect(url, { interaction, development: true })).rejects.toMatchObject({
      code: 'ERR_ACCESS_DENIED',
    })
    expect(interaction.count).toBe(1)
  })

  it('a Bearer (unbound) token is refused by default (ERR_TOKEN_NOT_BOUND)', async () => {
    const { url, rs } = await stack((req, origin) => unauthorized()(req, origin), 'Bearer')
    await expect(connect(url, { interaction: instant(), development: true })).rejects.toMatchObject(
      {
        code: 'ERR_TOKEN_NOT_BOUND',
      },
    )
    expect(rs.requests.some((r) => r.headers.authorization !== undefined)).toBe(false)
  })

  it('an authorization response with another state is refused (ERR_AUTHORIZATION_FAILED)', async () => {
    const { url, as } = await stack((req, origin) => unauthorized()(req, origin))
    await expect(
      connect(url, { interaction: instant({ state: 'forged' }), development: true }),
    ).rejects.toMatchObject({ code: 'ERR_AUTHORIZATION_FAILED' })
    expect(as.requests.some((r) => r.path === '/token')).toBe(false)
  })

  it('sends resource, PKCE S256, state and dpop_jkt, and a DPoP proof on the token request', async () => {
    const { url, as } = await stack((req, origin) => {
      if (!req.headers.authorization) return unauthorized()(req, origin)
      return { status: 403, headers: { 'www-authenticate': 'DPoP error="access_denied"' } }
    })
    let seen: URL | undefined
    const interaction = instant()
    const original = interaction.authorize
    interaction.authorize = async (u, c) => {
      seen = u
      return original(u, c)
    }
    await connect(url, { interaction, development: true }).catch(() => undefined)
    expect(seen?.searchParams.get('resource')).toBe(url)
    expect(seen?.searchParams.get('code_challenge_method')).toBe('S256')
    expect(seen?.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/)
    expect(seen?.searchParams.get('state')).toBeTruthy()
    expect(seen?.searchParams.get('dpop_jkt')).toMatch(/^[\w-]{43}$/)
    const token = as.requests.find((r) => r.path === '/token')!
    expect(new URLSearchParams(token.body).get('resource')).toBe(url)
    expect(new URLSearchParams(token.body).get('code_verifier')).toBeTruthy()
    expect(token.headers.dpop).toBeTruthy()
  })
})

describe('authorization server migration', () => {
  it('re-discovers, re-registers and authorizes at the new authorization server', async () => {
    const makeAs = async (prefix: string) => {
      const as = await startFake({
        '/.well-known/oauth-authorization-server': asMetadata(),
        'POST /register': () => ({
          status: 201,
          body: { client_id: `${prefix}-client`, token_endpoint_auth_method: 'none' },
        }),
        'POST /token': () => ({ body: { access_token: `${prefix}-token`, token_type: 'DPoP' } }),
      })
      fakes.push(as)
      return as
    }
    const as1 = await makeAs('one')
    const as2 = await makeAs('two')
    let current = as1
    let accepted = 'one-token'
    const rs = await startFake({
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        body: { resource: `${o}/mcp`, authorization_servers: [current.origin] },
      }),
      '/mcp': (req, origin) => {
        const auth = req.headers.authorization
        if (!auth) return unauthorized()(req, origin)
        if (auth !== `DPoP ${accepted}`) {
          return { status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' } }
        }
        const msg = JSON.parse(req.body || '{}') as { id?: number; method?: string }
        if (msg.id === undefined) return { status: 202 }
        const result =
          msg.method === 'initialize'
            ? {
                protocolVersion: '2025-06-18',
                capabilities: { tools: {} },
                serverInfo: { name: 'f', version: '1' },
              }
            : { tools: [] }
        return { body: { jsonrpc: '2.0', id: msg.id, result } }
      },
    })
    fakes.push(rs)
    const client = await connect(`${rs.origin}/mcp`, { interaction: instant(), development: true })
    await client.listTools()
    // The server moves to another authorization server; old tokens are refused.
    current = as2
    accepted = 'two-token'
    await client.listTools()
    expect(as2.requests.some((r) => r.path === '/register')).toBe(true)
    expect(as2.requests.some((r) => r.path === '/token')).toBe(true)
    await client.close()
  })
})
