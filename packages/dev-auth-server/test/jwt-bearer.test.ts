// The JWT-bearer grant (RFC 7523) of the development authorization server, against the real
// oidc-provider: workload tokens and ID-JAGs from configured issuers, DPoP-bound tokens, and every
// refusal the grant makes. The assertions are signed here with the issuers' keys, exactly as a
// workload platform or an enterprise IdP would sign them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, calculateJwkThumbprint, exportJWK } from 'jose'
import { JWT_BEARER_GRANT, startDevAuthServer } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { RESOURCE, TestClient, expectOAuthError, insecure, oauth, silent } from './helpers.js'

const PLATFORM = 'https://k8s.test.example'
const IDP = 'https://idp.test.example'
const WORKLOAD_CLIENT = 'reporting-agent'
const WORKLOAD_SUBJECT = 'system:serviceaccount:ci:reporting-agent'
const ENTERPRISE_CLIENT = 'enterprise-mcp-client'
const OTHER_CLIENT = 'other-mcp-client'

let server: DevAuthServer
let as: oauth.AuthorizationServer
const keys: Record<string, CryptoKeyPair> = {}

async function sign(
  key: 'platform' | 'idp' | 'stranger',
  claims: Record<string, unknown>,
  header: { typ?: string } = {},
  exp = '5m',
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', ...header })
    .setIssuedAt()
    .setExpirationTime(exp)
    .setJti(crypto.randomUUID())
  return jwt.sign(keys[key]!.privateKey)
}

const workloadToken = (overrides: Record<string, unknown> = {}) =>
  sign('platform', { iss: PLATFORM, sub: WORKLOAD_SUBJECT, aud: as.issuer, ...overrides })

const idJag = (overrides: Record<string, unknown> = {}, header = { typ: 'oauth-id-jag+jwt' }) =>
  sign(
    'idp',
    {
      iss: IDP,
      sub: 'alice',
      aud: as.issuer,
      client_id: ENTERPRISE_CLIENT,
      resource: RESOURCE,
      ...overrides,
    },
    header,
  )

async function grant(
  clientId: string,
  params: Record<string, string>,
  options: { dpop?: boolean } = {},
): Promise<oauth.TokenEndpointResponse> {
  const client: oauth.Client = { client_id: clientId }
  const response = await oauth.genericTokenEndpointRequest(
    as,
    client,
    oauth.None(),
    JWT_BEARER_GRANT,
    params,
    {
      ...(options.dpop !== false && { DPoP: oauth.DPoP(client, keys['dpop']!) }),
      ...insecure,
    },
  )
  return oauth.processGenericTokenEndpointResponse(as, client, response)
}

beforeAll(async () => {
  for (const name of ['platform', 'idp', 'stranger', 'dpop']) {
    keys[name] = await oauth.generateKeyPair('ES256')
  }
  const publicJwk = async (name: string) => ({
    ...(await exportJWK(keys[name]!.publicKey)),
    alg: 'ES256',
  })
  const agent = (id: string) => ({
    client_id: id,
    token_endpoint_auth_method: 'none',
    grant_types: [JWT_BEARER_GRANT],
    response_types: [],
    redirect_uris: [],
  })
  server = await startDevAuthServer({
    resources: [{ uri: RESOURCE, scopes: ['drive:read', 'drive:write', 'drive:share'] }],
    clients: [agent(WORKLOAD_CLIENT), agent(ENTERPRISE_CLIENT), agent(OTHER_CLIENT)],
    jwtBearer: [
      {
        kind: 'workload',
        issuer: PLATFORM,
        keys: [await publicJwk('platform')],
        client: WORKLOAD_CLIENT,
        subject: WORKLOAD_SUBJECT,
        scopes: ['drive:read'],
      },
      {
        kind: 'id-jag',
        issuer: IDP,
        keys: [await publicJwk('idp')],
        clients: [ENTERPRISE_CLIENT, OTHER_CLIENT],
      },
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

describe('JWT-bearer grant: workload identity federation', () => {
  it('is advertised in the metadata', () => {
    expect(as.grant_types_supported).toContain(JWT_BEARER_GRANT)
  })

  it('issues a DPoP-bound token for the workload, at most its allowed scopes', async () => {
    const issued = await grant(WORKLOAD_CLIENT, {
      assertion: await workloadToken(),
      resource: RESOURCE,
    })
    expect(issued.token_type.toLowerCase()).toBe('dpop')
    expect(issued.scope).toBe('drive:read')
    const verifier = await TestClient.create(server.issuer)
    const { payload } = await verifier.verify(issued.access_token)
    expect(payload.sub).toBe(WORKLOAD_SUBJECT)
    expect(payload.client_id).toBe(WORKLOAD_CLIENT)
    expect(payload['cnf']).toEqual({
      jkt: await calculateJwkThumbprint(await exportJWK(keys['dpop']!.publicKey)),
    })
  })

  it('refuses a token addressed to another server', async () => {
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, {
        assertion: await workloadToken({ aud: 'https://elsewhere.example' }),
        resource: RESOURCE,
      }),
      'invalid_grant',
      /aud/,
    )
  })

  it("refuses another workload's token for this client", async () => {
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, {
        assertion: await workloadToken({ sub: 'system:serviceaccount:ci:other' }),
        resource: RESOURCE,
      }),
      'unauthorized_client',
      /may not present/,
    )
  })

  it('refuses a token signed with a key the issuer does not have', async () => {
    const forged = await sign('stranger', { iss: PLATFORM, sub: WORKLOAD_SUBJECT, aud: as.issuer })
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, { assertion: forged, resource: RESOURCE }),
      'invalid_grant',
      /not valid/,
    )
  })

  it("refuses a token signed with another trusted issuer's key", async () => {
    const confused = await sign('idp', { iss: PLATFORM, sub: WORKLOAD_SUBJECT, aud: as.issuer })
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, { assertion: confused, resource: RESOURCE }),
      'invalid_grant',
      /not valid/,
    )
  })

  it('refuses an expired token', async () => {
    const expired = await sign(
      'platform',
      { iss: PLATFORM, sub: WORKLOAD_SUBJECT, aud: as.issuer },
      {},
      '-1m',
    )
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, { assertion: expired, resource: RESOURCE }),
      'invalid_grant',
      /exp/,
    )
  })

  it('refuses a scope beyond what the workload may have', async () => {
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, {
        assertion: await workloadToken(),
        resource: RESOURCE,
        scope: 'drive:read drive:write',
      }),
      'invalid_scope',
      /drive:write/,
    )
  })

  it('refuses a request without a DPoP proof', async () => {
    await expectOAuthError(
      grant(
        WORKLOAD_CLIENT,
        { assertion: await workloadToken(), resource: RESOURCE },
        { dpop: false },
      ),
      'invalid_request',
      /DPoP proof is required/,
    )
  })

  it('refuses an issuer it does not trust', async () => {
    await expectOAuthError(
      grant(WORKLOAD_CLIENT, {
        assertion: await workloadToken({ iss: 'https://untrusted.example' }),
        resource: RESOURCE,
      }),
      'invalid_grant',
      /not from a trusted issuer/,
    )
  })
})

describe('JWT-bearer grant: ID-JAG (enterprise-managed authorization)', () => {
  it('issues a DPoP-bound token for the user the ID-JAG names, for its resource', async () => {
    const issued = await grant(ENTERPRISE_CLIENT, { assertion: await idJag() })
    expect(issued.token_type.toLowerCase()).toBe('dpop')
    const verifier = await TestClient.create(server.issuer)
    const { payload } = await verifier.verify(issued.access_token)
    expect(payload.sub).toBe('alice')
    expect(payload.client_id).toBe(ENTERPRISE_CLIENT)
    expect(payload.scope).toBe('drive:read drive:write drive:share')
  })

  it('grants an ID-JAG once', async () => {
    const assertion = await idJag()
    await grant(ENTERPRISE_CLIENT, { assertion, resource: RESOURCE })
    await expectOAuthError(
      grant(ENTERPRISE_CLIENT, { assertion, resource: RESOURCE }),
      'invalid_grant',
      /used already/,
    )
  })

  it('refuses an ID-JAG issued to another client', async () => {
    await expectOAuthError(
      grant(OTHER_CLIENT, { assertion: await idJag() }),
      'invalid_grant',
      /another client/,
    )
  })

  it('refuses a JWT that is not typed as an ID-JAG', async () => {
    await expectOAuthError(
      grant(ENTERPRISE_CLIENT, { assertion: await idJag({}, { typ: 'JWT' }) }),
      'invalid_grant',
      /typ/,
    )
  })

  it('refuses a resource other than the ID-JAG names', async () => {
    await expectOAuthError(
      grant(ENTERPRISE_CLIENT, {
        assertion: await idJag(),
        resource: 'http://127.0.0.1:4999/mcp',
      }),
      'invalid_target',
      /not the ID-JAG resource/,
    )
  })

  it('grants no more than the ID-JAG scope', async () => {
    await expectOAuthError(
      grant(ENTERPRISE_CLIENT, {
        assertion: await idJag({ scope: 'drive:read' }),
        scope: 'drive:write',
      }),
      'invalid_scope',
      /drive:write/,
    )
  })

  it('refuses an ID-JAG for an unknown user', async () => {
    await expectOAuthError(
      grant(ENTERPRISE_CLIENT, { assertion: await idJag({ sub: 'mallory' }) }),
      'invalid_grant',
      /no known user/,
    )
  })
})

describe('JWT-bearer configuration', () => {
  it('refuses a private key among the trusted keys at start', async () => {
    const jwk = { ...(await exportJWK(keys['platform']!.publicKey)), d: 'c2VjcmV0' }
    await expect(
      startDevAuthServer({
        resources: [{ uri: RESOURCE, scopes: ['drive:read'] }],
        jwtBearer: [{ kind: 'workload', issuer: PLATFORM, keys: [jwk], client: 'a', subject: 'b' }],
        logger: silent,
      }),
    ).rejects.toThrow(/no private key/)
  })
})
