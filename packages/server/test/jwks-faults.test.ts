/**
 * Faults of the issuer's key set, through createCallproof on real HTTP (docs/operations.md,
 * "Faults"): with the JWKS unreachable, keys already fetched keep working until their cache age
 * runs out, and after that a token is refused (never a 500, never a tool run); an unknown `kid`
 * costs at most one key set fetch per cooldown, bounded by the fetch timeout, and is answered 401
 * `invalid_token`.
 *
 * The authorization server is a local HTTP server whose JWKS endpoint can be switched to drop the
 * connection (unreachable) or to never answer (hung): the two faults a test cannot otherwise
 * cause on demand.
 *
 * Time is moved by hand: only `Date` is faked (jose counts cache age and cooldown with
 * `Date.now()`, the resolver's retry delay with its `clock`), so cache ages and cooldowns are long
 * and nothing ages out while a loaded machine is slow; timers and sockets stay real, which the
 * fetch timeout needs.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Hono } from 'hono'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import { parseWwwAuthenticate } from '@callproof/core'
import { createCallproof, createToolRegistry } from '../src/index.js'
import type { IssuerKeysOptions } from '../src/index.js'
import { clientKey } from './helpers/issuer.js'
import type { ClientKey } from './helpers/issuer.js'
import { provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

type Mode = 'up' | 'unreachable' | 'hung'

let mode: Mode = 'up'
let jwksFetches = 0
let issuer = ''
let kid = ''
let privateKey: CryptoKey
let publicJwk: JWK
const hung = new Set<() => void>()
let closeIssuer: () => Promise<void>
let alice: ClientKey
let runs = 0

beforeAll(async () => {
  const pair = await generateKeyPair('ES256')
  privateKey = pair.privateKey
  kid = crypto.randomUUID()
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' }
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }))
      return
    }
    if (path !== '/jwks') {
      res.writeHead(404).end()
      return
    }
    jwksFetches++
    if (mode === 'unreachable') {
      req.socket.destroy()
    } else if (mode === 'hung') {
      hung.add(() => req.socket.destroy())
    } else {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [publicJwk] }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  closeIssuer = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  alice = await clientKey()
})

afterAll(async () => {
  for (const drop of hung) drop()
  await closeIssuer?.()
})

beforeEach(() => {
  mode = 'up'
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() })
})

afterEach(() => {
  vi.useRealTimers()
})

/** Moves the (faked) wall clock forward; the tokens and proofs minted afterwards follow it. */
function advance(ms: number): void {
  vi.setSystemTime(Date.now() + ms)
}

function mint(resource: string, tokenKid = kid): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    iss: issuer,
    aud: resource,
    iat: now,
    exp: now + 300,
    jti: crypto.randomUUID(),
    sub: 'alice',
    client_id: 'test-client',
    scope: 'drive:read',
    cnf: { jkt: alice.jkt },
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: tokenKid })
    .sign(privateKey)
}

async function server(keys: IssuerKeysOptions): Promise<{ run: Running; resource: string }> {
  let resource = ''
  const run = await listen((origin) => {
    resource = `${origin}/mcp`
    const tools = createToolRegistry({ name: 'jwks-faults', version: '0.0.0' })
    tools.register('whoami', { policy: { scopes: ['drive:read'] } }, () => {
      runs++
      return { content: [{ type: 'text', text: 'ok' }] }
    })
    const callproof = createCallproof({
      resource,
      issuers: issuer,
      tools,
      keys: { clock: () => Date.now(), ...keys },
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  return { run, resource }
}

/** One call with a fresh proof; the status, the challenge's error, how long it took, whether it ran. */
async function call(resource: string, token: string) {
  const before = runs
  const started = performance.now()
  const response = await fetch(
    resource,
    await provenRequest(resource, { token, key: alice, message: toolCall('whoami') }),
  )
  await response.arrayBuffer()
  return {
    status: response.status,
    error: parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')[0]?.params['error'],
    ms: performance.now() - started,
    ran: runs > before,
  }
}

describe('the issuer JWKS unreachable', () => {
  it('keeps verifying with the cached keys until their cache age runs out, then refuses (no 500), then recovers', async () => {
    const { run, resource } = await server({
      cacheMaxAgeMs: 60_000,
      cooldownMs: 600_000,
      retryAfterMs: 30_000,
    })
    try {
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
      const fetched = jwksFetches

      mode = 'unreachable'
      for (let i = 0; i < 3; i++) {
        expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
      }
      expect(jwksFetches).toBe(fetched)

      advance(60_001)
      const expired = await call(resource, await mint(resource))
      expect(expired).toMatchObject({ status: 401, error: 'invalid_token', ran: false })
      expect(jwksFetches).toBe(fetched + 1)
      // The failed fetch is not retried by every request: the next ones are refused at once.
      for (let i = 0; i < 3; i++) {
        const again = await call(resource, await mint(resource))
        expect(again).toMatchObject({ status: 401, error: 'invalid_token', ran: false })
      }
      expect(jwksFetches).toBe(fetched + 1)

      mode = 'up'
      advance(30_000)
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
      expect(jwksFetches).toBe(fetched + 2)
    } finally {
      await run.close()
    }
  })
})

describe('an unknown kid', () => {
  it('triggers one key set fetch per cooldown, then 401 invalid_token, never a 500', async () => {
    const { run, resource } = await server({ cooldownMs: 60_000 })
    try {
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
      advance(60_001)
      const before = jwksFetches
      for (let i = 0; i < 5; i++) {
        const unknown = await call(resource, await mint(resource, `unknown-${i}`))
        expect(unknown).toMatchObject({ status: 401, error: 'invalid_token', ran: false })
      }
      // One refresh for the first unknown kid, none for the next four inside the cooldown.
      expect(jwksFetches).toBe(before + 1)
      // The known key is not disturbed.
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
    } finally {
      await run.close()
    }
  })

  it('with the JWKS hung: one refresh bounded by the fetch timeout, then 401 at once until retryAfterMs', async () => {
    const { run, resource } = await server({
      cooldownMs: 60_000,
      timeoutMs: 1_000,
      retryAfterMs: 60_000,
    })
    try {
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
      advance(60_001)
      mode = 'hung'
      const before = jwksFetches
      const first = await call(resource, await mint(resource, 'unknown-hung'))
      expect(first).toMatchObject({ status: 401, error: 'invalid_token', ran: false })
      // Waited for the fetch timeout (1 s), not jose's default 5 s: the upper bound leaves a
      // loaded machine room and still fails with the default.
      expect(first.ms).toBeGreaterThanOrEqual(900)
      expect(first.ms).toBeLessThan(4_500)
      expect(jwksFetches).toBe(before + 1)
      // Past the cooldown (jose counts it from the last fetch that succeeded), but the failed
      // fetch is not retried for every unknown kid: answered from the cache, without a fetch to
      // wait for.
      for (let i = 0; i < 5; i++) {
        const next = await call(resource, await mint(resource, `unknown-hung-${i}`))
        expect(next).toMatchObject({ status: 401, error: 'invalid_token', ran: false })
        expect(jwksFetches).toBe(before + 1)
      }
      expect(jwksFetches).toBe(before + 1)
      expect(await call(resource, await mint(resource))).toMatchObject({ status: 200, ran: true })
    } finally {
      for (const drop of hung) drop()
      hung.clear()
      await run.close()
    }
  })
})
