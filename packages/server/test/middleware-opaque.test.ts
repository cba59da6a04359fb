/**
 * Opaque access tokens through createCallproof's `introspection` option, against the local
 * issuer's real RFC 7662 endpoint over HTTP: the answer goes through the same checks as a JWT,
 * and the proof must still be made with the key the token is bound to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import { parseWwwAuthenticate } from '@callproof/core'
import { callerOf, createCallproof, createToolRegistry } from '../src/index.js'
import type { CallproofOptions } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

let issuer: TestIssuer
let alice: ClientKey
let bob: ClientKey
let run: Running
let resource = ''
const seen: string[] = []

function registry() {
  const tools = createToolRegistry({ name: 'opaque-test', version: '0.0.0' })
  tools.register('whoami', { policy: { public: true } }, (extra) => {
    seen.push('whoami')
    return { content: [{ type: 'text', text: JSON.stringify(callerOf(extra)) }] }
  })
  tools.register(
    'read',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ({ path }) => {
      seen.push(`read:${path}`)
      return { content: [{ type: 'text', text: `content of ${path}` }] }
    },
  )
  return tools
}

function introspection(overrides: Partial<NonNullable<CallproofOptions['introspection']>> = {}) {
  return {
    endpoint: `${issuer.issuer}/introspect`,
    clientId: issuer.introspectionClient.id,
    clientSecret: issuer.introspectionClient.secret,
    cacheSeconds: 0,
    ...overrides,
  }
}

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  bob = await clientKey()
  run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools: registry(),
      introspection: introspection(),
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
})
afterAll(async () => {
  await run.close()
  await issuer.close()
})

/** An active introspection answer for `key`, as the authorization server would give it. */
function active(key: ClientKey | undefined, extra: Record<string, unknown> = {}) {
  return {
    active: true,
    iss: issuer.issuer,
    sub: 'carol',
    client_id: 'opaque-client',
    aud: resource,
    scope: 'drive:read',
    iat: Math.floor(Date.now() / 1000) - 5,
    exp: Math.floor(Date.now() / 1000) + 300,
    jti: `opaque-${crypto.randomUUID()}`,
    ...(key !== undefined ? { cnf: { jkt: key.jkt } } : {}),
    ...extra,
  }
}

function opaqueToken(): string {
  // Not a compact JWS (no dots), so it goes to the introspection endpoint.
  return `op_${crypto.randomUUID().replace(/-/g, '')}`
}

async function send(token: string, key: ClientKey, message: unknown) {
  return fetch(resource, await provenRequest(resource, { token, key, message }))
}

function challengeOf(response: Response) {
  return parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')[0]
}

describe('opaque tokens through introspection (createCallproof({ introspection }))', () => {
  it('runs a call with an active, DPoP-bound opaque token; the caller comes from the answer', async () => {
    const token = opaqueToken()
    issuer.opaque.set(token, active(alice))
    const asked = issuer.introspectionAuth.length
    const response = await send(token, alice, toolCall('whoami'))
    expect(response.status).toBe(200)
    const body = (await response.json()) as { result: { content: { text: string }[] } }
    expect(JSON.parse(body.result.content[0]!.text)).toMatchObject({
      sub: 'carol',
      clientId: 'opaque-client',
      jkt: alice.jkt,
    })
    expect(issuer.introspectionAuth.length).toBe(asked + 1)
    expect(issuer.introspectionAuth.at(-1)).toMatch(/^Basic /)
  })

  it('answers an inactive token with 401 invalid_token and runs nothing', async () => {
    const before = seen.length
    const response = await send(opaqueToken(), alice, toolCall('read', { path: 'a' }))
    expect(response.status).toBe(401)
    expect(challengeOf(response)?.params['error']).toBe('invalid_token')
    expect(((await response.json()) as { error_description: string }).error_description).toMatch(
      /not active/,
    )
    expect(seen.length).toBe(before)
  })

  it('refuses an active but unbound (bearer) token with 401 invalid_token', async () => {
    const token = opaqueToken()
    issuer.opaque.set(token, active(undefined))
    const before = seen.length
    const response = await send(token, alice, toolCall('read', { path: 'a' }))
    expect(response.status).toBe(401)
    expect(challengeOf(response)?.params['error']).toBe('invalid_token')
    expect(((await response.json()) as { error_description: string }).error_description).toMatch(
      /cnf\.jkt/,
    )
    expect(seen.length).toBe(before)
  })

  it('refuses an opaque token bound to alice presented with bob’s key (invalid_dpop_proof)', async () => {
    const token = opaqueToken()
    issuer.opaque.set(token, active(alice))
    const before = seen.length
    const response = await send(token, bob, toolCall('read', { path: 'a' }))
    expect(response.status).toBe(401)
    expect(challengeOf(response)?.params['error']).toBe('invalid_dpop_proof')
    expect(seen.length).toBe(before)
  })

  it('refuses an opaque token for another resource and an expired one', async () => {
    const other = opaqueToken()
    issuer.opaque.set(other, active(alice, { aud: 'https://other.example/mcp' }))
    const expired = opaqueToken()
    issuer.opaque.set(expired, active(alice, { exp: Math.floor(Date.now() / 1000) - 60 }))
    for (const token of [other, expired]) {
      const response = await send(token, alice, toolCall('read', { path: 'a' }))
      expect(response.status).toBe(401)
      expect(challengeOf(response)?.params['error']).toBe('invalid_token')
    }
  })

  it('applies tool policies to the opaque token’s scopes (403 insufficient_scope)', async () => {
    const token = opaqueToken()
    issuer.opaque.set(token, active(alice, { scope: 'drive:write' }))
    const response = await send(token, alice, toolCall('read', { path: 'a' }))
    expect(response.status).toBe(403)
    expect(challengeOf(response)?.params['error']).toBe('insufficient_scope')
  })

  it('still verifies JWT access tokens locally, without asking the endpoint', async () => {
    const jwt = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    const asked = issuer.introspectionAuth.length
    const response = await send(jwt, alice, toolCall('read', { path: 'jwt' }))
    expect(response.status).toBe(200)
    expect(issuer.introspectionAuth.length).toBe(asked)
  })

  it('fails closed with 503 when the endpoint refuses our client credentials', async () => {
    const token = opaqueToken()
    issuer.opaque.set(token, active(alice))
    const s = await listen((origin) => {
      const callproof = createCallproof({
        resource: `${origin}/mcp`,
        issuers: issuer.issuer,
        tools: registry(),
        introspection: introspection({ clientSecret: 'wrong' }),
      })
      const app = new Hono()
      callproof.mount(app)
      return app
    })
    try {
      const r = `${s.origin}/mcp`
      issuer.opaque.set(token, active(alice, { aud: r }))
      const response = await fetch(
        r,
        await provenRequest(r, { token, key: alice, message: toolCall('read', { path: 'a' }) }),
      )
      expect(response.status).toBe(503)
      expect(response.headers.get('retry-after')).not.toBeNull()
    } finally {
      await s.close()
    }
  })
})

describe('the introspection option is checked at creation', () => {
  const base = () => ({ resource: 'http://127.0.0.1:1/mcp', tools: registry() })

  it('refuses an issuer that is not trusted', () => {
    expect(() =>
      createCallproof({
        ...base(),
        issuers: issuer.issuer,
        introspection: introspection({ issuer: 'https://evil.example' }),
      }),
    ).toThrow(/introspection.issuer https:\/\/evil.example is not one of the trusted issuers/)
  })

  it('needs an issuer when several are trusted', () => {
    expect(() =>
      createCallproof({
        ...base(),
        issuers: [issuer.issuer, 'https://as2.example'],
        introspection: introspection(),
      }),
    ).toThrow(/introspection.issuer must name one of the issuers/)
  })

  it('refuses a missing client secret and a non-URL endpoint', () => {
    expect(() =>
      createCallproof({
        ...base(),
        issuers: issuer.issuer,
        introspection: introspection({ clientSecret: '' }),
      }),
    ).toThrow(/ERR_INVALID_OPTIONS|clientSecret/)
    expect(() =>
      createCallproof({
        ...base(),
        issuers: issuer.issuer,
        introspection: introspection({ endpoint: 'not a url' }),
      }),
    ).toThrow()
  })
})
