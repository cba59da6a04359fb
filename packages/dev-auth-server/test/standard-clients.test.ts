/**
 * Standard registrations and authorization requests (issue 12, item 3), against the real
 * development authorization server: the MCP SDK v1's own `registerClient` and
 * `startAuthorization` (what its clients, and MCP Inspector, send), an authorization request
 * without `scope`, and a client without DPoP, which must learn what it lacks before the login page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerClient, startAuthorization } from '@modelcontextprotocol/sdk/client/auth.js'
import { devInteraction } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { RESOURCE, TestClient, startServer } from './helpers.js'

let server: DevAuthServer
let metadata: Awaited<ReturnType<typeof discover>>
const INSPECTOR_CALLBACK = 'http://localhost:6274/oauth/callback'

async function discover() {
  const response = await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)
  return (await response.json()) as Parameters<typeof registerClient>[1]['metadata'] & {
    authorization_endpoint: string
    response_types_supported: string[]
  }
}

beforeAll(async () => {
  server = await startServer()
  metadata = await discover()
})
afterAll(async () => {
  await server.close()
})

/** What MCP Inspector registers (its redirect URIs, public client, the resource's scopes). */
const inspectorMetadata = {
  client_name: 'MCP Inspector',
  client_uri: 'https://github.com/modelcontextprotocol/inspector',
  redirect_uris: [INSPECTOR_CALLBACK, `${INSPECTOR_CALLBACK}/debug`],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  scope: 'drive:read drive:write',
}

describe('standard dynamic client registration', () => {
  it("accepts the SDK's registration with scope, token_endpoint_auth_method none and Inspector's redirect URIs", async () => {
    const registered = await registerClient(server.issuer, {
      metadata,
      clientMetadata: inspectorMetadata,
    })
    expect(registered.client_id).toMatch(/\S/)
    expect(registered.redirect_uris).toEqual(inspectorMetadata.redirect_uris)
    expect(registered.token_endpoint_auth_method).toBe('none')
    expect(registered.scope).toBe('drive:read drive:write')

    // The registered client completes a DPoP flow to Inspector's callback.
    const agent = await TestClient.create(server.issuer, {
      clientId: registered.client_id,
      redirectUri: INSPECTOR_CALLBACK,
    })
    const tokens = await agent.login(
      devInteraction({ user: 'alice', redirectUri: INSPECTOR_CALLBACK }),
      { scope: 'drive:read' },
    )
    const { payload } = await agent.verify(tokens.access_token)
    expect(payload.client_id).toBe(registered.client_id)
    expect(payload.cnf).toEqual({ jkt: await agent.jkt() })
  })

  it("accepts the SDK's registration with the scope passed apart and a loopback callback", async () => {
    const registered = await registerClient(server.issuer, {
      metadata,
      clientMetadata: {
        client_name: 'sdk v1 client',
        redirect_uris: ['http://localhost:8090/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      scope: 'drive:read',
    })
    expect(registered.scope).toBe('drive:read')
  })

  it('still refuses a scope that no resource knows', async () => {
    await expect(
      registerClient(server.issuer, {
        metadata,
        clientMetadata: { ...inspectorMetadata, scope: 'drive:read admin:everything' },
      }),
    ).rejects.toThrow(/scope/)
  })
})

describe('an authorization request without scope', () => {
  it("gets the resource's scopes, not an empty consent page", async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const tokens = await client.login(alice, { scope: undefined })
    const { payload } = await client.verify(tokens.access_token)
    expect(String(payload.scope).split(' ').sort()).toEqual([
      'drive:read',
      'drive:share',
      'drive:write',
    ])
    expect(alice.pages.find((p) => p.form === 'consent')?.text).toContain('drive:write')
  })
})

describe('a client without DPoP', () => {
  it('learns before the login page that dpop_jkt is needed, and of callproof bridge', async () => {
    const registered = await registerClient(server.issuer, {
      metadata,
      clientMetadata: inspectorMetadata,
    })
    // Exactly the authorization request the SDK v1 client builds: no dpop_jkt.
    const { authorizationUrl } = await startAuthorization(server.issuer, {
      metadata,
      clientInformation: registered,
      redirectUrl: INSPECTOR_CALLBACK,
      scope: 'drive:read',
      resource: new URL(RESOURCE),
      state: 'st-1',
    })
    expect(authorizationUrl.searchParams.has('dpop_jkt')).toBe(false)
    const response = await fetch(authorizationUrl, { redirect: 'manual' })
    // Straight back to the client with the error: no login page, no interaction started.
    expect(response.status).toBeGreaterThanOrEqual(300)
    expect(response.status).toBeLessThan(400)
    const location = new URL(response.headers.get('location') ?? '', server.issuer)
    expect(`${location.origin}${location.pathname}`).toBe(INSPECTOR_CALLBACK)
    expect(location.searchParams.get('error')).toBe('invalid_request')
    expect(location.searchParams.get('state')).toBe('st-1')
    const description = location.searchParams.get('error_description') ?? ''
    expect(description).toMatch(/dpop_jkt is required/)
    expect(description).toMatch(/DPoP-bound/)
    expect(description).toMatch(/callproof bridge/)
  })
})
