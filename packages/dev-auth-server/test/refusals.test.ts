import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEV_CLIENT_ID,
  MCP_TOOL_CALL,
  argumentsDigest,
  devInteraction,
  startDevAuthServer,
} from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import {
  OTHER_RESOURCE,
  RESOURCE,
  TestClient,
  expectOAuthError,
  insecure,
  oauth,
  silent,
  startServer,
} from './helpers.js'

let server: DevAuthServer
let client: TestClient

beforeAll(async () => {
  server = await startServer()
  client = await TestClient.create(server.issuer)
})
afterAll(async () => {
  await server.close()
})

/** Sends an authorization request and returns the error the client would see. */
async function authorizationError(params: Record<string, string | undefined>) {
  const { url } = await client.authorizationUrl(params)
  const response = await fetch(url, { redirect: 'manual' })
  const location = response.headers.get('location')
  expect(location, 'the request must be refused before any page is shown').toBeTruthy()
  const callback = new URL(location!, url)
  expect(callback.origin + callback.pathname).toBe(client.redirectUri)
  return {
    error: callback.searchParams.get('error'),
    description: callback.searchParams.get('error_description') ?? '',
  }
}

const detail = (overrides: Record<string, unknown> = {}) => ({
  type: MCP_TOOL_CALL,
  resource: RESOURCE,
  tool: 'share_file',
  args: argumentsDigest({ path: 'notes.txt', with: 'bob' }),
  ...overrides,
})

describe('the authorization endpoint refuses', () => {
  it('an unregistered redirect URI, without redirecting to it', async () => {
    for (const redirect of [
      'http://127.0.0.1/evil',
      'http://127.0.0.1/callback/extra',
      'http://attacker.example/callback',
      'https://127.0.0.1/callback',
    ]) {
      const { url } = await client.authorizationUrl({ redirect_uri: redirect })
      const response = await fetch(url, { redirect: 'manual' })
      expect(response.status).toBe(400)
      expect(response.headers.get('location')).toBeNull()
      const page = await response.text()
      expect(page).toContain('invalid_redirect_uri')
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
    }
  })

  it('a missing redirect URI even though the client has only one', async () => {
    const { url } = await client.authorizationUrl({ redirect_uri: undefined })
    const response = await fetch(url, { redirect: 'manual' })
    expect(response.status).toBe(400)
    expect(response.headers.get('location')).toBeNull()
  })

  it('PKCE plain, and a missing code_challenge', async () => {
    const plain = await authorizationError({
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
    })
    expect(plain.error).toBe('invalid_request')
    expect(plain.description).toMatch(/code_challenge_method/)
    const missing = await authorizationError({
      code_challenge: undefined,
      code_challenge_method: undefined,
    })
    expect(missing.error).toBe('invalid_request')
    expect(missing.description).toMatch(/PKCE/)
  })

  it('a missing or unknown resource', async () => {
    const missing = await authorizationError({ resource: undefined })
    expect(missing.error).toBe('invalid_target')
    expect(missing.description).toMatch(/resource parameter .* is required/)
    const unknown = await authorizationError({ resource: 'http://127.0.0.1:1/mcp' })
    expect(unknown.error).toBe('invalid_target')
    expect(unknown.description).toMatch(/unknown resource/)
  })

  it('an unknown authorization_details type', async () => {
    const result = await authorizationError({
      authorization_details: JSON.stringify([{ type: 'payment_initiation', amount: 1 }]),
    })
    expect(result.error).toBe('invalid_authorization_details')
  })

  it.each([
    ['a resource that is not configured', { resource: 'http://127.0.0.1:1/mcp' }, /resource/],
    [
      'a resource URI that differs from a configured one by a slash',
      { resource: OTHER_RESOURCE + '/' },
      /resource/,
    ],
    ['a missing tool', { tool: undefined }, /tool/],
    ['args that are not a SHA-256 digest', { args: 'abc' }, /args/],
    [
      'display arguments that do not match args',
      { arguments: { path: 'notes.txt', with: 'eve' } },
      /do not match/,
    ],
    [
      'display arguments that are not an object',
      { arguments: ['x'] },
      /arguments must be a JSON object/,
    ],
    ['an unknown member', { actions: ['write'] }, /unknown member/],
  ])('an mcp_tool_call with %s', async (_label, overrides, message) => {
    const result = await authorizationError({
      scope: 'drive:share',
      authorization_details: JSON.stringify([detail(overrides)]),
    })
    expect(result.error).toBe('invalid_authorization_details')
    expect(result.description).toMatch(message)
  })

  it('an mcp_tool_call for a resource other than the one the token is requested for', async () => {
    const result = await authorizationError({
      scope: 'mail:read',
      resource: OTHER_RESOURCE,
      authorization_details: JSON.stringify([detail()]),
    })
    expect(result.error).toBe('invalid_authorization_details')
    expect(result.description).toMatch(/not a requested resource/)
  })

  it('nothing about a valid approval request: it goes on to the sign-in page', async () => {
    const ok = await client.authorizationUrl({
      scope: 'drive:share',
      authorization_details: JSON.stringify([detail()]),
    })
    const response = await fetch(ok.url, { redirect: 'manual' })
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toMatch(/\/interaction\//)
  })
})

describe('the token endpoint refuses', () => {
  it('a wrong PKCE verifier', async () => {
    const { url, state } = await client.authorizationUrl()
    const callback = await devInteraction({ user: 'alice' }).authorize(url, { reason: 'authorize' })
    await expectOAuthError(
      client.exchange(callback, oauth.generateRandomCodeVerifier(), state),
      'invalid_grant',
      /code_verifier/,
    )
  })

  it('to add authorization_details that the user never approved', async () => {
    const { url, verifier, state } = await client.authorizationUrl({ scope: 'drive:share' })
    const callback = await devInteraction({ user: 'alice' }).authorize(url, { reason: 'authorize' })
    const params = oauth.validateAuthResponse(client.as, client.client, callback, state)
    const response = await oauth.authorizationCodeGrantRequest(
      client.as,
      client.client,
      oauth.None(),
      params,
      client.redirectUri,
      verifier,
      {
        DPoP: client.dpop(),
        additionalParameters: {
          resource: RESOURCE,
          authorization_details: JSON.stringify([detail()]),
        },
        ...insecure,
      },
    )
    const tokens = await oauth.processAuthorizationCodeResponse(client.as, client.client, response)
    // Only what the user approved on a page reaches a token.
    expect((await client.verify(tokens.access_token)).payload.authorization_details).toBeUndefined()
    expect(tokens.authorization_details).toBeUndefined()
  })
})

describe('the pages refuse', () => {
  async function loginPageOf() {
    const { url } = await client.authorizationUrl()
    const jar: string[] = []
    let response = await fetch(url, { redirect: 'manual' })
    for (const c of response.headers.getSetCookie()) jar.push(c.split(';')[0]!)
    const pageUrl = new URL(response.headers.get('location')!, url)
    response = await fetch(pageUrl, { headers: { cookie: jar.join('; ') } })
    const html = await response.text()
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!
    const action = new URL(/<form id="login" method="post" action="([^"]+)"/.exec(html)![1]!, url)
    return { jar, csrf, action, html, response }
  }

  it('a form post without the form token, or from another origin', async () => {
    const { jar, csrf, action } = await loginPageOf()
    const post = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(action, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie: jar.join('; '),
          'content-type': 'application/x-www-form-urlencoded',
          ...headers,
        },
        body: new URLSearchParams(body),
      })
    const credentials = { username: 'alice', password: 'alice-dev-password', decision: 'login' }
    expect((await post(credentials)).status).toBe(403)
    expect((await post({ ...credentials, csrf: csrf + 'x' })).status).toBe(403)
    // Another loopback port is "same-site": SameSite cookies alone would not stop it.
    expect((await post({ ...credentials, csrf }, { origin: 'http://127.0.0.1:9999' })).status).toBe(
      403,
    )
    expect((await post({ ...credentials, csrf }, { 'sec-fetch-site': 'same-site' })).status).toBe(
      403,
    )
    // The real thing goes through.
    expect(
      (await post({ ...credentials, csrf }, { origin: new URL(server.issuer).origin })).status,
    ).toBe(303)
  })

  it('are served with a strict CSP, no framing, no caching', async () => {
    const { response, html } = await loginPageOf()
    const csp = response.headers.get('content-security-policy')!
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("form-action 'self' http://127.0.0.1")
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(html).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)[a-z]/i)
  })
})

describe('every page it serves', () => {
  it('loads nothing from elsewhere, including oidc-provider pages it keeps (sign-out)', async () => {
    const response = await fetch(`${server.issuer}/session/end/success`)
    expect(response.status).toBe(200)
    const page = await response.text()
    expect(page).toContain('Signed out')
    expect(page).not.toMatch(/googleapis|@import|<script/)
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
  })
})

describe('the server refuses', () => {
  it('a Host header that is not its own (DNS rebinding)', async () => {
    const { port } = new URL(server.issuer)
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/.well-known/openid-configuration',
          headers: { host: 'rebind.attacker.example' },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(421)
  })

  it('to listen on a host that is not loopback', async () => {
    await expect(
      startDevAuthServer({
        host: '0.0.0.0',
        resources: [{ uri: RESOURCE, scopes: ['a'] }],
        logger: silent,
      }),
    ).rejects.toThrow(/not loopback/)
  })

  it('invalid resources at start', async () => {
    await expect(startDevAuthServer({ resources: [], logger: silent })).rejects.toThrow(
      /at least one/,
    )
    await expect(
      startDevAuthServer({
        resources: [{ uri: 'http://127.0.0.1/mcp#x', scopes: [] }],
        logger: silent,
      }),
    ).rejects.toThrow(/without query or fragment/)
    await expect(
      startDevAuthServer({ resources: [{ uri: RESOURCE, scopes: ['bad scope'] }], logger: silent }),
    ).rejects.toThrow(/scope tokens/)
  })
})

describe('dynamic client registration (RFC 7591)', () => {
  async function register(metadata: Parameters<typeof oauth.dynamicClientRegistrationRequest>[1]) {
    const response = await oauth.dynamicClientRegistrationRequest(client.as, metadata, insecure)
    return oauth.processDynamicClientRegistrationResponse(response)
  }

  it('is open, forces DPoP-bound tokens, and the new client completes a flow', async () => {
    const registered = await register({
      client_name: 'Registered agent',
      redirect_uris: ['http://127.0.0.1:7777/cb'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      dpop_bound_access_tokens: false,
    })
    expect(registered.client_id).not.toBe(DEV_CLIENT_ID)
    expect(registered['dpop_bound_access_tokens']).toBe(true)
    const agent = await TestClient.create(server.issuer, {
      clientId: registered.client_id,
      redirectUri: 'http://127.0.0.1:7777/cb',
    })
    const alice = devInteraction({ user: 'alice', redirectUri: 'http://127.0.0.1:7777/cb' })
    const tokens = await agent.login(alice)
    expect(alice.pages.find((p) => p.form === 'login')?.text).toContain('Registered agent')
    const { payload } = await agent.verify(tokens.access_token)
    expect(payload.client_id).toBe(registered.client_id)
    expect(payload.cnf).toEqual({ jkt: await agent.jkt() })
  })

  it('refuses http redirect URIs that are not loopback for native clients', async () => {
    await expect(
      register({
        redirect_uris: ['http://example.com/cb'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      }),
    ).rejects.toThrow()
  })

  it('serves the same metadata at the RFC 8414 path', async () => {
    const oidc = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()
    const rfc8414 = await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)
    expect(rfc8414.status).toBe(200)
    expect(await rfc8414.json()).toEqual(oidc)
    const url = new URL(server.issuer)
    const as = await oauth.processDiscoveryResponse(
      url,
      await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...insecure }),
    )
    expect(as.issuer).toBe(server.issuer)
  })

  it('treats an https client_id as a metadata document URL, and refuses one it cannot fetch', async () => {
    const { url } = await client.authorizationUrl({
      client_id: 'https://127.0.0.1:9/client-metadata.json',
    })
    const response = await fetch(url, { redirect: 'manual' })
    expect(response.status).toBe(400)
    expect(response.headers.get('location')).toBeNull()
    expect(await response.text()).toMatch(/invalid_client/)
  })

  it('advertises client ID metadata documents', async () => {
    const metadata = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()
    expect(metadata.client_id_metadata_document_supported).toBe(true)
    expect(metadata.registration_endpoint).toBe(`${server.issuer}/reg`)
    expect(metadata.code_challenge_methods_supported).toEqual(['S256'])
    expect(metadata.dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA', 'Ed25519'])
    expect(metadata.acr_values_supported).toEqual([
      'urn:callproof:acr:pwd',
      'urn:callproof:acr:mfa',
    ])
    expect(metadata.authorization_details_types_supported).toEqual([MCP_TOOL_CALL])
  })
})
