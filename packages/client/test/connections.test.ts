// The connections the SSRF guard keeps open (discovery, registration, token requests) are closed
// with the session: `session.close()`, and `client.close()` for a client from `connect()`. Real
// HTTP on 127.0.0.1; the fakes keep idle connections for a minute, so only the client can close
// them within the test.
import { afterEach, describe, expect, it } from 'vitest'
import {
  CallproofSession,
  connect,
  generateProofKeyPair,
  guardedFetch,
  type Interaction,
} from '../src/index.js'
import { asMetadata, startFake, type Fake } from './support/fake.js'

const fakes: Fake[] = []
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()))
})

const keepAlive = { keepAliveTimeout: 60_000 }

/** An interaction that approves at once, as a redirecting authorization server would. */
const instant: Interaction = {
  redirectUri: () => 'http://127.0.0.1/callback',
  authorize: async (url) => {
    const callback = new URL('http://127.0.0.1/callback')
    callback.searchParams.set('code', 'code-1')
    callback.searchParams.set('state', url.searchParams.get('state')!)
    return callback
  },
}

/** Waits up to `ms` for `condition`; resolves with its last value. */
async function eventually(condition: () => boolean, ms = 2_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!condition() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return condition()
}

/** An authorization server and an MCP server that accepts any DPoP token. */
async function stack() {
  const as = await startFake(
    {
      '/.well-known/oauth-authorization-server': asMetadata(),
      'POST /register': () => ({
        status: 201,
        body: { client_id: 'c1', token_endpoint_auth_method: 'none' },
      }),
      'POST /token': () => ({
        body: { access_token: 'token-1', token_type: 'DPoP', expires_in: 300 },
        headers: { 'cache-control': 'no-store' },
      }),
    },
    keepAlive,
  )
  const rs = await startFake(
    {
      '/.well-known/oauth-protected-resource/mcp': (_r, o) => ({
        // What a callproof server publishes (discovery refuses a server that offers no DPoP).
        body: {
          resource: `${o}/mcp`,
          authorization_servers: [as.origin],
          dpop_bound_access_tokens_required: true,
        },
      }),
      '/mcp': (req, origin) => {
        if (!req.headers.authorization) {
          return {
            status: 401,
            headers: {
              'www-authenticate': `DPoP resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp", algs="ES256"`,
            },
          }
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
    },
    keepAlive,
  )
  fakes.push(as, rs)
  return { as, rs }
}

describe('the guarded connection pool is closed with the session', () => {
  it('session.close() closes the connections discovery opened; the session stays usable', async () => {
    const { as, rs } = await stack()
    const session = new CallproofSession(`${rs.origin}/mcp`, {
      keyPair: await generateProofKeyPair(),
      interaction: instant,
      development: true,
    })
    await session.discover()
    expect(as.openConnections).toBeGreaterThan(0)
    expect(rs.openConnections).toBeGreaterThan(0)

    await session.close()
    expect(await eventually(() => as.openConnections === 0 && rs.openConnections === 0)).toBe(true)

    // A later request opens a new pool (and the next close closes it too).
    const before = rs.requests.length
    expect(await session.rediscover()).toBe(false)
    expect(rs.requests.length).toBe(before + 1)
    expect(rs.openConnections).toBe(1)
    await session.close()
    expect(await eventually(() => rs.openConnections === 0)).toBe(true)
  })

  it('client.close() closes the connections to the authorization server', async () => {
    const { as, rs } = await stack()
    const client = await connect(`${rs.origin}/mcp`, { interaction: instant, development: true })
    await client.listTools()
    expect(as.requests.map((r) => r.path)).toContain('/token')
    expect(as.openConnections).toBeGreaterThan(0)

    await client.close()
    expect(await eventually(() => as.openConnections === 0)).toBe(true)
  })

  it('closing one session leaves another session, and guardedFetch users of their own policy, working', async () => {
    const { rs } = await stack()
    const options = {
      keyPair: await generateProofKeyPair(),
      interaction: instant,
      development: true,
    }
    const one = new CallproofSession(`${rs.origin}/mcp`, options)
    const two = new CallproofSession(`${rs.origin}/mcp`, options)
    expect(one.urlPolicy).not.toBe(two.urlPolicy)
    await one.discover()
    await two.discover()
    const own = guardedFetch({ allowLoopbackHttp: true })
    await (await own(`${rs.origin}/.well-known/oauth-protected-resource/mcp`)).body?.cancel()
    const open = rs.openConnections
    expect(open).toBe(3)

    await one.close()
    expect(await eventually(() => rs.openConnections === open - 1)).toBe(true)
    expect(await two.rediscover()).toBe(false)
    await (await own(`${rs.origin}/.well-known/oauth-protected-resource/mcp`)).body?.cancel()
    // The other two reused their pooled connections: nothing new was opened.
    expect(rs.openConnections).toBe(open - 1)
    await two.close()
  })
})
