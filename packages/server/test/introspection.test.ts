import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIntrospector } from '../src/index.js'
import { startIssuer } from './helpers/issuer.js'
import type { TestIssuer } from './helpers/issuer.js'

let issuer: TestIssuer
const audience = 'http://127.0.0.1:3000/mcp'
beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => issuer.close())

function introspector(overrides: Partial<Parameters<typeof createIntrospector>[0]> = {}) {
  return createIntrospector({
    endpoint: `${issuer.issuer}/introspect`,
    issuer: issuer.issuer,
    clientId: issuer.introspectionClient.id,
    clientSecret: issuer.introspectionClient.secret,
    cacheSeconds: 0,
    ...overrides,
  })
}

function answer(extra: Record<string, unknown> = {}) {
  return {
    active: true,
    iss: issuer.issuer,
    sub: 'alice',
    client_id: 'test-client',
    aud: audience,
    scope: 'drive:read',
    exp: Math.floor(Date.now() / 1000) + 300,
    cnf: { jkt: 'thumbprint' },
    ...extra,
  }
}

describe('introspection', () => {
  it('returns the claims of an active DPoP-bound token, authenticating with client_secret_basic', async () => {
    issuer.opaque.set('opaque-1', answer({ jti: 'j1', acr: 'urn:callproof:acr:mfa' }))
    const claims = await introspector().introspect('opaque-1', audience)
    expect(claims).toMatchObject({
      sub: 'alice',
      client_id: 'test-client',
      cnf: { jkt: 'thumbprint' },
      jti: 'j1',
    })
    expect(issuer.introspectionAuth.at(-1)).toMatch(/^Basic /)
  })

  it('refuses an inactive token', async () => {
    await expect(introspector().introspect('unknown', audience)).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    })
  })

  it('refuses an unbound (bearer) token', async () => {
    issuer.opaque.set('opaque-bearer', answer({ cnf: undefined }))
    await expect(introspector().introspect('opaque-bearer', audience)).rejects.toThrow(/cnf.jkt/)
  })

  it('refuses a token for another audience', async () => {
    issuer.opaque.set('opaque-aud', answer({ aud: 'https://other.example/mcp' }))
    await expect(introspector().introspect('opaque-aud', audience)).rejects.toThrow(/audience/)
  })

  it('refuses an expired token even if the server says active', async () => {
    issuer.opaque.set('opaque-exp', answer({ exp: Math.floor(Date.now() / 1000) - 10 }))
    await expect(introspector().introspect('opaque-exp', audience)).rejects.toThrow(/expired/)
  })

  it('refuses an answer naming another issuer', async () => {
    issuer.opaque.set('opaque-iss', answer({ iss: 'https://evil.example' }))
    await expect(introspector().introspect('opaque-iss', audience)).rejects.toThrow(/issuer/)
  })

  it('fails closed (503 code) when the client is not accepted by the endpoint', async () => {
    issuer.opaque.set('opaque-2', answer())
    await expect(
      introspector({ clientSecret: 'wrong' }).introspect('opaque-2', audience),
    ).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
  })

  it('caches an active answer, never past the cache time', async () => {
    issuer.opaque.set('opaque-3', answer())
    const cached = introspector({ cacheSeconds: 60 })
    const before = issuer.introspectionAuth.length
    await cached.introspect('opaque-3', audience)
    await cached.introspect('opaque-3', audience)
    expect(issuer.introspectionAuth.length).toBe(before + 1)
  })

  it('checks its options at creation', () => {
    expect(() => introspector({ endpoint: 'http://as.example/introspect' })).toThrow(/https/)
    expect(() => introspector({ clientSecret: '' })).toThrow(/clientSecret/)
  })
})
