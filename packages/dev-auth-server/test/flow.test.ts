import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACR_MFA, ACR_PASSWORD, devInteraction } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { RESOURCE, TestClient, startServer } from './helpers.js'

let server: DevAuthServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})

describe('authorization code flow with DPoP (oauth4webapi client)', () => {
  it('issues an RFC 9068 JWT access token bound to the client key, for the resource', async () => {
    const client = await TestClient.create(server.issuer)
    const before = Math.floor(Date.now() / 1000)
    const tokens = await client.login(devInteraction({ user: 'alice' }), {
      scope: 'drive:read drive:write',
    })
    expect(tokens.token_type.toLowerCase()).toBe('dpop')
    const { header, payload } = await client.verify(tokens.access_token)
    expect(header.typ).toBe('at+jwt')
    expect(header.alg).toBe('ES256')
    expect(payload.iss).toBe(server.issuer)
    expect(payload.aud).toBe(RESOURCE)
    expect(payload.sub).toBe('alice')
    expect(payload.client_id).toBe(client.client.client_id)
    expect(payload.scope).toBe('drive:read drive:write')
    expect(payload.cnf).toEqual({ jkt: await client.jkt() })
    expect(payload.acr).toBe(ACR_PASSWORD)
    expect(typeof payload.auth_time).toBe('number')
    expect(payload.auth_time).toBeGreaterThanOrEqual(before - 1)
    expect(typeof payload.jti).toBe('string')
    expect(payload.exp! - payload.iat!).toBe(300)
    expect(payload.authorization_details).toBeUndefined()
  })

  it('steps up to MFA when acr_values asks for it', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const first = await client.login(alice)
    expect((await client.verify(first.access_token)).payload.acr).toBe(ACR_PASSWORD)
    const stepped = await client.login(alice, { acr_values: ACR_MFA }, 'step_up')
    const { payload } = await client.verify(stepped.access_token)
    expect(payload.acr).toBe(ACR_MFA)
    expect(alice.pages.map((p) => p.form)).toEqual(['login', 'consent', 'login', 'mfa', 'consent'])
  })
})
