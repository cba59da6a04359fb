/**
 * Per-user third-party authorization (`createThirdPartyAuthorizations`), with real pieces: the
 * MCP server's authorization server (callers' tokens), a second development authorization server
 * standing for the third-party service's own accounts, a real HTTP endpoint standing for its API,
 * and a real redis-server for the shared store. `extra` is built in the shape callproof hands
 * every tool, from tokens the MCP authorization server really issued.
 */
import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as oauth from 'oauth4webapi'
import { createRemoteJWKSet, decodeJwt, exportJWK, jwtVerify } from 'jose'
import { createClient } from 'redis'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { ErrorCode, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js'
import {
  DEV_CLIENT_ID,
  DEV_REDIRECT_URI,
  DevInteractionError,
  devInteraction,
  startDevAuthServer,
} from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import { connect } from '@callproof/client'
import { jwkThumbprint } from '@callproof/core'
import {
  MemoryGrantStore,
  callerOf,
  createCallproof,
  createThirdPartyAuthorizations,
  createToolRegistry,
} from '@callproof/server'
import type { GrantStore, ThirdPartyAuthorizations } from '@callproof/server'
import { createRedisGrantStore } from '@callproof/server/redis'
import { startRedisServer } from '../../../packages/server/test/support/redis-server.js'
import type { TestRedisServer } from '../../../packages/server/test/support/redis-server.js'

let MCP = ''
const CALLBACK = 'http://127.0.0.1:3993/downstream/callback'
const CALENDAR_CLIENT = 'drive-calendar'
/** The MCP server's client at its own authorization server, to confirm who is in the browser. */
const CONFIRM_CLIENT = 'calendar-mcp-confirm'
let confirmKey: CryptoKeyPair
const confirmUri = () => new URL('/downstream/confirm', MCP).href
const CALENDAR_SECRET = 'calendar-client-secret-for-tests-only'
const insecure = { [oauth.allowInsecureRequests]: true } as const
const silent = { info() {}, warn() {}, error() {} }

let mcpAs: DevAuthServer
let accounts: DevAuthServer
let api: { url: string; seen: IncomingHttpHeaders[]; close(): Promise<void> }
let redis: TestRedisServer
let redisClient: ReturnType<typeof createClient>
const encryptionKey = crypto.getRandomValues(new Uint8Array(32))

let mcpServer: ReturnType<typeof serve> | undefined
/** The tool's grants, set by each test that calls through the MCP server. */
let toolGrants: ThirdPartyAuthorizations | undefined

/** A real callproof MCP server whose `next_event` tool uses the caller's calendar grant. */
async function startMcpServer(): Promise<() => void> {
  const tools = createToolRegistry({ name: 'calendar-mcp', version: '0.1.0' })
  tools.register(
    'next_event',
    { inputSchema: { day: z.string().max(10) }, policy: { scopes: ['drive:read'] } },
    async (_args, extra) => {
      const calendar = await toolGrants!.of(extra).get('calendar')
      const answer = await calendar.fetch(api.url)
      return {
        content: [{ type: 'text', text: `${callerOf(extra).sub}: ${answer.status}` }],
      }
    },
  )
  let app: Hono | undefined
  const server = serve({
    fetch: (request: Request) => app?.fetch(request) ?? new Response('starting', { status: 503 }),
    port: 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  mcpServer = server
  MCP = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  // The issuer's URL names its port, so the app is built once it runs.
  return () => {
    const callproof = createCallproof({ resource: MCP, issuers: mcpAs.issuer, tools })
    app = new Hono()
    // The caller confirmation is a page of this server, outside /mcp.
    app.get('/downstream/confirm', (c) => toolGrants!.confirm(c.req.raw))
    callproof.mount(app)
  }
}

beforeAll(async () => {
  // The MCP server listens first: the authorization server issues tokens for its resource URI.
  const ready = await startMcpServer()
  confirmKey = await oauth.generateKeyPair('ES256')
  mcpAs = await startDevAuthServer({
    resources: [{ uri: MCP, scopes: ['drive:read'] }],
    clients: [
      {
        client_id: CONFIRM_CLIENT,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(confirmKey.publicKey)), alg: 'ES256' }] },
        redirect_uris: [confirmUri()],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    logger: silent,
  })
  ready()
  // The third-party API: records what it is sent, answers 200.
  const seen: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => {
    seen.push(req.headers)
    res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  api = {
    url,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
  accounts = await startDevAuthServer({
    resources: [{ uri: url, scopes: ['calendar:read'] }],
    clients: [
      {
        client_id: CALENDAR_CLIENT,
        client_secret: CALENDAR_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [CALLBACK],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    // Short-lived access tokens: every later use goes through a refresh.
    accessTokenTtl: 10,
    logger: silent,
  })
  redis = await startRedisServer()
  redisClient = createClient({ url: redis.url })
  await redisClient.connect()
})
afterAll(async () => {
  await new Promise<void>((resolve) => {
    if (mcpServer === undefined) return resolve()
    mcpServer.close(() => resolve())
    if ('closeAllConnections' in mcpServer) mcpServer.closeAllConnections()
  })
  await redisClient?.close().catch(() => undefined)
  await redis?.stop()
  await accounts?.close()
  await api?.close()
  await mcpAs?.close()
})

/** A caller's verified `extra`, from a real token of the MCP authorization server. */
async function caller(user: string): Promise<{ authInfo: AuthInfo }> {
  const url = new URL(mcpAs.issuer)
  const as = await oauth.processDiscoveryResponse(
    url,
    await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
  )
  const client: oauth.Client = { client_id: DEV_CLIENT_ID }
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const keyPair = await oauth.generateKeyPair('ES256')
  const authorize = new URL(as.authorization_endpoint!)
  for (const [k, v] of Object.entries({
    client_id: DEV_CLIENT_ID,
    redirect_uri: DEV_REDIRECT_URI,
    response_type: 'code',
    scope: 'drive:read',
    resource: MCP,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    // The development authorization server asks public clients to name their DPoP key here.
    dpop_jkt: await jwkThumbprint(await exportJWK(keyPair.publicKey)),
  })) {
    authorize.searchParams.set(k, v)
  }
  const callback = await devInteraction({ user }).authorize(authorize, { reason: 'authorize' })
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    oauth.validateAuthResponse(as, client, callback, state),
    DEV_REDIRECT_URI,
    verifier,
    { DPoP: oauth.DPoP(client, keyPair), ...insecure },
  )
  const token = (await oauth.processAuthorizationCodeResponse(as, client, response)).access_token
  const claims = decodeJwt(token) as Record<string, unknown>
  return {
    authInfo: {
      token,
      clientId: String(claims['client_id']),
      scopes: String(claims['scope']).split(' '),
      expiresAt: Number(claims['exp']),
      resource: new URL(MCP),
      extra: {
        caller: {
          sub: String(claims['sub']),
          clientId: String(claims['client_id']),
          jkt: (claims['cnf'] as { jkt: string }).jkt,
          tokenId: String(claims['jti']),
        },
      },
    },
  }
}

function authorizations(
  store: GrantStore,
  key = encryptionKey,
  confirm = false,
): ThirdPartyAuthorizations {
  return createThirdPartyAuthorizations({
    ...(confirm
      ? {
          confirmCaller: {
            issuer: mcpAs.issuer,
            clientId: CONFIRM_CLIENT,
            clientKey: confirmKey.privateKey,
            redirectUri: confirmUri(),
            resource: MCP,
          },
        }
      : // Deprecated on purpose (loud); the unconfirmed path is under test here.
        { allowUnconfirmedCallers: true }),
    services: {
      calendar: {
        issuer: accounts.issuer,
        clientId: CALENDAR_CLIENT,
        clientSecret: CALENDAR_SECRET,
        scopes: ['calendar:read'],
        resource: api.url,
        description: 'your calendar',
      },
    },
    callbackUrl: CALLBACK,
    store,
    encryptionKey: key,
  })
}

/** The elicitation `get` answers with, or a failure. */
async function elicitation(
  grants: ThirdPartyAuthorizations,
  extra: { authInfo: AuthInfo },
): Promise<{ url: string; elicitationId: string }> {
  const error = await grants
    .of(extra)
    .get('calendar')
    .then(
      () => undefined,
      (e: unknown) => e,
    )
  if (!(error instanceof UrlElicitationRequiredError)) {
    throw new Error(`expected a URL elicitation, got ${String(error)}`)
  }
  expect(error.code).toBe(ErrorCode.UrlElicitationRequired)
  const [first] = error.elicitations
  expect(first?.mode).toBe('url')
  return { url: first!.url, elicitationId: first!.elicitationId }
}

/** The user opens the elicitation URL and signs in to the third party as `user`. */
async function authorizeAs(user: string, url: string): Promise<URL> {
  return devInteraction({ user, redirectUri: CALLBACK }).authorize(new URL(url), {
    reason: 'authorize',
  })
}

/** Who the third-party API was called for, by the token it received. */
async function lastCallSubject(): Promise<string> {
  const header = api.seen.at(-1)?.authorization ?? ''
  const token = header.replace(/^DPoP /, '')
  const { payload } = await jwtVerify(
    token,
    createRemoteJWKSet(new URL(`${accounts.issuer}/jwks`)),
    {
      issuer: accounts.issuer,
      audience: api.url,
    },
  )
  return String(payload.sub)
}

describe('third-party authorization through URL elicitation', () => {
  it('asks the caller to authorize, stores the grant for that caller, and uses it (refreshed) on the next call', async () => {
    const store = new MemoryGrantStore()
    const grants = authorizations(store)
    const alice = await caller('alice')
    const { url } = await elicitation(grants, alice)
    expect(new URL(url).origin).toBe(accounts.issuer)

    const done = await grants.callback(new Request(await authorizeAs('alice', url)))
    expect(done.status).toBe(200)

    const calendar = await grants.of(alice).get('calendar')
    expect((await calendar.fetch(api.url)).status).toBe(200)
    expect(await lastCallSubject()).toBe('alice')
    // The access token lives 10 s minus the margin: the next use refreshes it, still alice's.
    const again = await grants.of(alice).get('calendar')
    await again.fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
  })

  it('never gives bob alice’s grant: bob is asked for his own', async () => {
    const grants = authorizations(new MemoryGrantStore())
    const alice = await caller('alice')
    const bob = await caller('bob')
    const { url } = await elicitation(grants, alice)
    await grants.callback(new Request(await authorizeAs('alice', url)))
    await grants.of(alice).get('calendar')
    const asked = await elicitation(grants, bob)
    await grants.callback(new Request(await authorizeAs('bob', asked.url)))
    await (await grants.of(bob).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('bob')
    await (await grants.of(alice).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
  })

  it('completes an authorization once: a replayed or unknown callback is refused', async () => {
    const grants = authorizations(new MemoryGrantStore())
    const alice = await caller('alice')
    const { url } = await elicitation(grants, alice)
    const callback = await authorizeAs('alice', url)
    expect((await grants.callback(new Request(callback))).status).toBe(200)
    expect((await grants.callback(new Request(callback))).status).toBe(400)
    const forged = new URL(callback)
    forged.searchParams.set('state', 'made-up')
    expect((await grants.callback(new Request(forged))).status).toBe(400)
  })

  it('does not use a revoked grant: the caller is asked again', async () => {
    const grants = authorizations(new MemoryGrantStore())
    const alice = await caller('alice')
    const { url } = await elicitation(grants, alice)
    await grants.callback(new Request(await authorizeAs('alice', url)))
    await grants.of(alice).get('calendar')
    await grants.revoke(alice, 'calendar')
    await elicitation(grants, alice)
  })

  it('does not use a grant revoked at the service’s own authorization server: the caller is asked again', async () => {
    // The refresh tokens the service's authorization server issues (opaque: the value is the id).
    const provider = accounts.provider as {
      on(event: string, listener: (token: { jti: string }) => void): void
      removeListener(event: string, listener: (token: { jti: string }) => void): void
    }
    const issued: string[] = []
    const note = (token: { jti: string }) => issued.push(token.jti)
    provider.on('refresh_token.saved', note)
    try {
      const grants = authorizations(new MemoryGrantStore())
      const alice = await caller('alice')
      const { url } = await elicitation(grants, alice)
      await grants.callback(new Request(await authorizeAs('alice', url)))
      await (await grants.of(alice).get('calendar')).fetch(api.url)
      expect(await lastCallSubject()).toBe('alice')
      // alice removes the app at the service: its current refresh token, and the grant, are revoked.
      const issuer = new URL(accounts.issuer)
      const as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, insecure),
      )
      const revoked = await oauth.revocationRequest(
        as,
        { client_id: CALENDAR_CLIENT },
        oauth.ClientSecretBasic(CALENDAR_SECRET),
        issued.at(-1)!,
        insecure,
      )
      await oauth.processRevocationResponse(revoked)
      const calls = api.seen.length
      await elicitation(grants, alice)
      expect(api.seen.length).toBe(calls)
    } finally {
      provider.removeListener('refresh_token.saved', note)
    }
  })

  it('keeps grants unreadable at rest and useless without the key', async () => {
    const store = new MemoryGrantStore()
    const grants = authorizations(store)
    const alice = await caller('alice')
    const { url } = await elicitation(grants, alice)
    await grants.callback(new Request(await authorizeAs('alice', url)))
    await (await grants.of(alice).get('calendar')).fetch(api.url)
    const token = (api.seen.at(-1)?.authorization ?? '').replace(/^DPoP /, '')
    const atRest = store.values().join('\n')
    expect(atRest).not.toContain(token)
    expect(atRest).not.toContain(token.split('.')[1]!)
    expect(atRest).not.toContain('alice')
    // Another key over the same store finds no grant and asks again.
    const otherKey = crypto.getRandomValues(new Uint8Array(32))
    await elicitation(authorizations(store, otherKey), alice)
  })

  it('does not open a grant moved under another caller’s entry: bob gets nothing from alice’s sealed grant', async () => {
    // The real memory store, with the keys it is written under noted (to find whose entry is whose).
    const inner = new MemoryGrantStore()
    const written: string[] = []
    const store: GrantStore = {
      get: (key) => inner.get(key),
      set: (key, value, ttl) => (written.push(key), inner.set(key, value, ttl)),
      take: (key) => inner.take(key),
      delete: (key) => inner.delete(key),
    }
    const grants = authorizations(store)
    const lastGrantKey = () => written.filter((k) => k.startsWith('grant:')).at(-1)!
    const alice = await caller('alice')
    const bob = await caller('bob')
    await grants.callback(
      new Request(await authorizeAs('alice', (await elicitation(grants, alice)).url)),
    )
    const aliceEntry = lastGrantKey()
    await grants.callback(
      new Request(await authorizeAs('bob', (await elicitation(grants, bob)).url)),
    )
    const bobEntry = lastGrantKey()
    expect(bobEntry).not.toBe(aliceEntry)
    // Someone with write access to the store copies alice's sealed grant over bob's.
    await inner.set(bobEntry, (await inner.get(aliceEntry))!, 60)
    // Sealed with alice's identity as additional data, it does not open for bob: he is asked.
    await elicitation(grants, bob)
    await (await grants.of(alice).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
  })
})

describe('through a callproof MCP server and the MCP SDK client', () => {
  it('answers an unauthorized caller with the URL elicitation (-32042), then runs as that caller', async () => {
    toolGrants = authorizations(new MemoryGrantStore())
    const client = await connect(MCP, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      clientInfo: { name: 'alice-agent', version: '0.1.0' },
    })
    try {
      const refused = await client
        .callTool({ name: 'next_event', arguments: { day: 'monday' } })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(refused).toBeInstanceOf(UrlElicitationRequiredError)
      const [asked] = (refused as UrlElicitationRequiredError).elicitations
      expect(new URL(asked!.url).origin).toBe(accounts.issuer)
      await toolGrants.callback(new Request(await authorizeAs('alice', asked!.url)))
      const result = (await client.callTool({
        name: 'next_event',
        arguments: { day: 'monday' },
      })) as {
        content: { text: string }[]
      }
      expect(result.content[0]?.text).toBe('alice: 200')
      expect(await lastCallSubject()).toBe('alice')
    } finally {
      await client.close()
    }
  })
})

describe('confirming that the person authorizing is the caller who was asked', () => {
  it('is required unless switched off on purpose', () => {
    expect(() =>
      createThirdPartyAuthorizations({
        services: {
          calendar: { issuer: accounts.issuer, clientId: 'c', clientSecret: 's', scopes: ['x'] },
        },
        callbackUrl: CALLBACK,
        store: new MemoryGrantStore(),
        encryptionKey,
      }),
    ).toThrow(/confirmCaller is required/)
  })

  it('stores the grant after the caller signs in as themselves', async () => {
    toolGrants = authorizations(new MemoryGrantStore(), encryptionKey, true)
    const alice = await caller('alice')
    const { url } = await elicitation(toolGrants, alice)
    expect(new URL(url).origin).toBe(mcpAs.issuer)
    const callback = await authorizeAs('alice', url)
    expect((await toolGrants.callback(new Request(callback))).status).toBe(200)
    await (await toolGrants.of(alice).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
  })

  it('refuses an elicitation URL that bob started and sent to alice: nobody gets alice’s account', async () => {
    toolGrants = authorizations(new MemoryGrantStore(), encryptionKey, true)
    const bob = await caller('bob')
    const alice = await caller('alice')
    const phishing = await elicitation(toolGrants, bob)
    // alice opens it and signs in as herself: the confirmation refuses before her calendar
    // account is ever asked.
    const failure = await authorizeAs('alice', phishing.url).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(failure).toBeInstanceOf(DevInteractionError)
    expect(String(failure)).toMatch(/unexpected answer 403 .*\/downstream\/confirm/)
    await elicitation(toolGrants, bob)
    await elicitation(toolGrants, alice)
  })
})

describe('third-party grants on Redis', () => {
  it('are shared by instances and survive a restart, still per caller', async () => {
    const store = () => createRedisGrantStore({ client: redisClient })
    const first = authorizations(store())
    const second = authorizations(store())
    const alice = await caller('alice')
    const bob = await caller('bob')
    // Asked by the first instance, completed through the second.
    const { url } = await elicitation(first, alice)
    expect((await second.callback(new Request(await authorizeAs('alice', url)))).status).toBe(200)
    await (await second.of(alice).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
    await elicitation(second, bob)
    // A new instance (a restart) over the same Redis.
    const restarted = authorizations(store())
    await (await restarted.of(alice).get('calendar')).fetch(api.url)
    expect(await lastCallSubject()).toBe('alice')
    await elicitation(restarted, bob)
    const raw = await redis.command('KEYS', 'callproof:grants:*')
    expect(raw).not.toContain('alice')
    // At rest in Redis: neither the token nor the caller in the clear, and useless without the key.
    const token = (api.seen.at(-1)?.authorization ?? '').replace(/^DPoP /, '')
    const keys = await redisClient.keys('callproof:grants:*')
    const values = (await Promise.all(keys.map((k) => redisClient.get(k)))).join('\n')
    expect(values).not.toBe('')
    for (const secret of [token, token.split('.')[1]!, 'alice']) {
      expect(values).not.toContain(secret)
    }
    const otherKey = crypto.getRandomValues(new Uint8Array(32))
    await elicitation(authorizations(store(), otherKey), alice)
  })
})
