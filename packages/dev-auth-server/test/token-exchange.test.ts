import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import {
  ACCESS_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT,
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
} from './helpers.js'

const MAIL = 'http://127.0.0.1:3998/'
const MCP_CLIENT = 'drive-mcp'
const OTHER_CLIENT = 'notes-mcp'

let server: DevAuthServer
let as: oauth.AuthorizationServer
const keys: Record<string, CryptoKeyPair> = {}

/** An MCP server's side of the exchange: private_key_jwt as `clientId`, DPoP with its own key. */
async function exchange(
  clientId: string,
  params: Record<string, string>,
  dpopKey: CryptoKeyPair = keys['dpop']!,
) {
  const client: oauth.Client = { client_id: clientId }
  const response = await oauth.genericTokenEndpointRequest(
    as,
    client,
    oauth.PrivateKeyJwt(keys[clientId]!.privateKey),
    TOKEN_EXCHANGE_GRANT,
    { subject_token_type: ACCESS_TOKEN_TYPE, ...params },
    { DPoP: oauth.DPoP(client, dpopKey), ...insecure },
  )
  return oauth.processGenericTokenEndpointResponse(as, client, response)
}

async function callerToken(user: string, resource = RESOURCE): Promise<string> {
  const client = await TestClient.create(server.issuer)
  const tokens = await client.login(devInteraction({ user }), {
    scope: resource === RESOURCE ? 'drive:read drive:share' : 'mail:read',
    resource,
  })
  return tokens.access_token
}

beforeAll(async () => {
  for (const name of [MCP_CLIENT, OTHER_CLIENT, 'dpop']) {
    keys[name] = await oauth.generateKeyPair('ES256')
  }
  const client = async (id: string) => ({
    client_id: id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [{ ...(await exportJWK(keys[id]!.publicKey)), alg: 'ES256' }] },
    grant_types: [TOKEN_EXCHANGE_GRANT],
    response_types: [],
    redirect_uris: [],
  })
  server = await startDevAuthServer({
    resources: [
      { uri: RESOURCE, scopes: ['drive:read', 'drive:write', 'drive:share'] },
      { uri: OTHER_RESOURCE, scopes: ['mail:read'] },
    ],
    clients: [await client(MCP_CLIENT), await client(OTHER_CLIENT)],
    tokenExchange: [
      { client: MCP_CLIENT, subject: RESOURCE, resource: MAIL, scopes: ['mail:send'] },
      { client: OTHER_CLIENT, subject: OTHER_RESOURCE, resource: MAIL, scopes: ['mail:send'] },
    ],
    logger: silent,
  })
  const url = new URL(server.issuer)
  as = await oauth.processDiscoveryResponse(
    url,
    await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
  )
})
afterAll(async () => {
  await server.close()
})

describe('token exchange (RFC 8693)', () => {
  it('issues a token for the downstream, for the caller, naming the MCP server as actor, bound to its key', async () => {
    const subject = await callerToken('alice')
    const issued = await exchange(MCP_CLIENT, {
      subject_token: subject,
      resource: MAIL,
      scope: 'mail:send',
    })
    expect(issued.token_type.toLowerCase()).toBe('dpop')
    expect(issued['issued_token_type']).toBe(ACCESS_TOKEN_TYPE)
    expect(issued.access_token).not.toBe(subject)
    const verifier = await TestClient.create(server.issuer)
    const { payload } = await verifier.verify(issued.access_token, MAIL)
    expect(payload.sub).toBe('alice')
    expect(payload.aud).toBe(MAIL)
    expect(payload.client_id).toBe(MCP_CLIENT)
    expect(payload['act']).toEqual({ sub: MCP_CLIENT })
    expect(payload.scope).toBe('mail:send')
    expect(payload['cnf']).toEqual({
      jkt: await calculateJwkThumbprint(await exportJWK(keys['dpop']!.publicKey)),
    })
    const subjectExp = (await verifier.verify(subject)).payload.exp!
    expect(payload.exp!).toBeLessThanOrEqual(subjectExp)
  })

  it('refuses a scope the policy does not allow', async () => {
    await expectOAuthError(
      exchange(MCP_CLIENT, {
        subject_token: await callerToken('alice'),
        resource: MAIL,
        scope: 'mail:send mail:read',
      }),
      'invalid_scope',
      /mail:read is not allowed/,
    )
  })

  it('refuses a resource the policy does not allow', async () => {
    await expectOAuthError(
      exchange(MCP_CLIENT, {
        subject_token: await callerToken('alice'),
        resource: 'http://127.0.0.1:3997/',
        scope: 'mail:send',
      }),
      'invalid_target',
      /may not exchange/,
    )
  })

  it('refuses a subject token issued to another MCP server', async () => {
    // notes-mcp may exchange tokens issued to OTHER_RESOURCE, not tokens issued to the drive.
    await expectOAuthError(
      exchange(OTHER_CLIENT, {
        subject_token: await callerToken('alice'),
        resource: MAIL,
        scope: 'mail:send',
      }),
      'invalid_target',
      /may not exchange a token for http:\/\/127\.0\.0\.1:3999\/mcp/,
    )
  })

  it('refuses a client the policy does not name', async () => {
    const client: oauth.Client = { client_id: 'callproof-dev-client' }
    const response = await oauth.genericTokenEndpointRequest(
      as,
      client,
      oauth.None(),
      TOKEN_EXCHANGE_GRANT,
      {
        subject_token_type: ACCESS_TOKEN_TYPE,
        subject_token: await callerToken('alice'),
        resource: MAIL,
        scope: 'mail:send',
      },
      { DPoP: oauth.DPoP(client, keys['dpop']!), ...insecure },
    )
    await expectOAuthError(
      oauth.processGenericTokenEndpointResponse(as, client, response),
      'invalid_request',
      /grant type is not allowed/,
    )
  })

  it('refuses a forged or foreign subject token', async () => {
    const real = await callerToken('alice')
    const [h, p] = real.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'bob' })).toString('base64url')}.${real.split('.')[2]}`
    await expectOAuthError(
      exchange(MCP_CLIENT, { subject_token: forged, resource: MAIL, scope: 'mail:send' }),
      'invalid_grant',
      /not a valid access token/,
    )
  })

  it('refuses a subject token whose grant was revoked at this server (RFC 7009), though the token has not expired', async () => {
    const client = await TestClient.create(server.issuer)
    const tokens = await client.login(devInteraction({ user: 'alice' }), {
      scope: 'drive:read drive:share',
    })
    const params = { subject_token: tokens.access_token, resource: MAIL, scope: 'mail:send' }
    await exchange(MCP_CLIENT, params)
    // alice revokes her sign-in: the refresh token, and with it the whole grant.
    const revoked = await oauth.revocationRequest(
      client.as,
      client.client,
      oauth.None(),
      tokens.refresh_token!,
      insecure,
    )
    await oauth.processRevocationResponse(revoked)
    await expectOAuthError(
      exchange(MCP_CLIENT, params),
      'invalid_grant',
      /grant behind subject_token has been revoked/,
    )
  })

  it('exchanges a token issued by a refresh, and refuses it once a refresh token reuse revoked the grant', async () => {
    const client = await TestClient.create(server.issuer)
    const first = await client.login(devInteraction({ user: 'bob' }), {
      scope: 'drive:read drive:share',
    })
    const second = await client.refresh(first.refresh_token!)
    const params = { subject_token: second.access_token, resource: MAIL, scope: 'mail:send' }
    await exchange(MCP_CLIENT, params)
    // Replaying the rotated refresh token revokes the grant (refresh token replay detection).
    await client.refresh(first.refresh_token!).catch(() => undefined)
    await expectOAuthError(
      exchange(MCP_CLIENT, params),
      'invalid_grant',
      /grant behind subject_token has been revoked/,
    )
  })

  it('requires a DPoP proof, a scope and the access token type', async () => {
    const subject = await callerToken('bob')
    const client: oauth.Client = { client_id: MCP_CLIENT }
    const response = await oauth.genericTokenEndpointRequest(
      as,
      client,
      oauth.PrivateKeyJwt(keys[MCP_CLIENT]!.privateKey),
      TOKEN_EXCHANGE_GRANT,
      {
        subject_token_type: ACCESS_TOKEN_TYPE,
        subject_token: subject,
        resource: MAIL,
        scope: 'mail:send',
      },
      { ...insecure },
    )
    await expectOAuthError(
      oauth.processGenericTokenEndpointResponse(as, client, response),
      'invalid_request',
      /DPoP proof is required/,
    )
    await expectOAuthError(
      exchange(MCP_CLIENT, { subject_token: subject, resource: MAIL }),
      'invalid_scope',
      /scope is required/,
    )
    await expectOAuthError(
      exchange(MCP_CLIENT, {
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        resource: MAIL,
        scope: 'mail:send',
      }),
      'invalid_request',
      /subject_token_type must be/,
    )
  })
})
