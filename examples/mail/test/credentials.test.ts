/**
 * `createDownstreamCredentials` from a tool's point of view, against the real development
 * authorization server and the real mail API. `extra` is built here in the shape callproof hands
 * every tool (`extra.authInfo`, DESIGN.md), from tokens the authorization server really issued:
 * the drive's e2e test (downstream.e2e.test.ts) covers the same path through the middleware.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as oauth from 'oauth4webapi'
import { decodeJwt, exportJWK } from 'jose'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { createProof, jwkThumbprint } from '@callproof/core'
import {
  TOKEN_EXCHANGE_GRANT,
  DEV_CLIENT_ID,
  DEV_REDIRECT_URI,
  devInteraction,
  startDevAuthServer,
} from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import {
  DownstreamCredentialError,
  createDownstreamCredentials,
  memorySink,
} from '@callproof/server'
import type { DownstreamCredentials } from '@callproof/server'
import { startMail } from '../src/index.js'
import type { RunningMail } from '../src/index.js'

const CLIENT = 'notes-mcp'
/** An MCP server the authorization server lets exchange, but that the mail API does not accept. */
const STRANGER = 'stranger-mcp'
const insecure = { [oauth.allowInsecureRequests]: true } as const
const silent = { info() {}, warn() {}, error() {} }

let as: DevAuthServer
/** A second authorization server with users of the same names: another issuer's "alice". */
let otherAs: DevAuthServer
let mail: RunningMail
let resource: string
let clientKey: CryptoKeyPair

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

async function startAs(mailResource: string): Promise<DevAuthServer> {
  return startDevAuthServer({
    // The mail API is also a resource users may get tokens for directly: such a token (no `act`)
    // must still be refused by the mail API, which accepts delegated tokens only.
    resources: [
      { uri: resource, scopes: ['notes:read'] },
      { uri: mailResource, scopes: ['mail:send'] },
    ],
    clients: await Promise.all(
      [CLIENT, STRANGER].map(async (id) => ({
        client_id: id,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(clientKey.publicKey)), alg: 'ES256' }] },
        grant_types: [TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
      })),
    ),
    // The authorization server lets STRANGER exchange too; the mail API does not accept it.
    tokenExchange: [CLIENT, STRANGER].map((client) => ({
      client,
      subject: resource,
      resource: mailResource,
      scopes: ['mail:send'],
    })),
    logger: silent,
  })
}

beforeAll(async () => {
  clientKey = await oauth.generateKeyPair('ES256')
  resource = 'http://127.0.0.1:3990/mcp'
  for (let attempt = 1; ; attempt++) {
    try {
      const port = await freePort()
      as = await startAs(`http://127.0.0.1:${port}/`)
      otherAs = await startAs(`http://127.0.0.1:${port}/`)
      mail = await startMail({ issuer: as.issuer, actors: [CLIENT], port })
      return
    } catch (error) {
      await as?.close()
      await otherAs?.close()
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
})
afterAll(async () => {
  await mail?.close()
  await as?.close()
  await otherAs?.close()
})

/** A user's access token for the MCP server, through the real login pages (PKCE, DPoP). */
async function userToken(
  server: DevAuthServer,
  user: string,
  target?: { resource: string; scope: string; keyPair?: CryptoKeyPair },
): Promise<string> {
  return (await signIn(server, user, target)).access_token
}

/** The discovered metadata of `server`. */
async function metadataOf(server: DevAuthServer): Promise<oauth.AuthorizationServer> {
  const url = new URL(server.issuer)
  return oauth.processDiscoveryResponse(
    url,
    await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
  )
}

/** A user's sign-in through the real login pages (PKCE, DPoP): access and refresh token. */
async function signIn(
  server: DevAuthServer,
  user: string,
  target: { resource: string; scope: string; keyPair?: CryptoKeyPair } = {
    resource,
    scope: 'notes:read',
  },
): Promise<oauth.TokenEndpointResponse> {
  const meta = await metadataOf(server)
  const client: oauth.Client = { client_id: DEV_CLIENT_ID }
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const keyPair = target.keyPair ?? (await oauth.generateKeyPair('ES256'))
  const authorize = new URL(meta.authorization_endpoint!)
  for (const [k, v] of Object.entries({
    client_id: DEV_CLIENT_ID,
    redirect_uri: DEV_REDIRECT_URI,
    response_type: 'code',
    scope: target.scope,
    resource: target.resource,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    // The development authorization server asks public clients to name their DPoP key here.
    dpop_jkt: await jwkThumbprint(await exportJWK(keyPair.publicKey)),
  })) {
    authorize.searchParams.set(k, v)
  }
  const callback = await devInteraction({ user }).authorize(authorize, { reason: 'authorize' })
  const params = oauth.validateAuthResponse(meta, client, callback, state)
  const dpop = oauth.DPoP(client, keyPair)
  const response = await oauth.authorizationCodeGrantRequest(
    meta,
    client,
    oauth.None(),
    params,
    DEV_REDIRECT_URI,
    verifier,
    { DPoP: dpop, ...insecure },
  )
  return oauth.processAuthorizationCodeResponse(meta, client, response)
}

/** The user signs out at the authorization server: their refresh token, and so their grant, is revoked (RFC 7009). */
async function revokeGrant(server: DevAuthServer, refreshToken: string): Promise<void> {
  const response = await oauth.revocationRequest(
    await metadataOf(server),
    { client_id: DEV_CLIENT_ID },
    oauth.None(),
    refreshToken,
    insecure,
  )
  await oauth.processRevocationResponse(response)
}

/** `extra` as callproof builds it for a verified request carrying `token`. */
function extraFor(token: string): { authInfo: AuthInfo } {
  const claims = decodeJwt(token) as Record<string, unknown>
  return {
    authInfo: {
      token,
      clientId: String(claims['client_id']),
      scopes: String(claims['scope']).split(' '),
      expiresAt: Number(claims['exp']),
      resource: new URL(resource),
      extra: {
        caller: {
          sub: String(claims['sub']),
          clientId: String(claims['client_id']),
          jkt: String((claims['cnf'] as { jkt: string }).jkt),
          tokenId: String(claims['jti']),
        },
      },
    },
  }
}

function credentials(
  extra: Partial<Parameters<typeof createDownstreamCredentials>[0]> = {},
): DownstreamCredentials {
  return createDownstreamCredentials({
    issuer: as.issuer,
    clientId: CLIENT,
    clientKey: clientKey.privateKey,
    services: { mail: { resource: mail.resource, scopes: ['mail:send'] } },
    ...extra,
  })
}

const send = (credential: Awaited<ReturnType<ReturnType<DownstreamCredentials['of']>['get']>>) =>
  credential.fetch(`${mail.origin}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'carol@example.com', subject: 's', text: 't' }),
  })

describe('createDownstreamCredentials', () => {
  it('gives each caller a credential of their own, reused (reuseSeconds) for that caller only', async () => {
    const downstream = credentials({ reuseSeconds: 60 })
    const alice = extraFor(await userToken(as, 'alice'))
    const bob = extraFor(await userToken(as, 'bob'))
    const a1 = await downstream.of(alice).get('mail')
    const b1 = await downstream.of(bob).get('mail')
    const a2 = await downstream.of(alice).get('mail')
    expect([a1.subject, b1.subject, a2.subject]).toEqual(['alice', 'bob', 'alice'])
    expect(a1.scopes).toEqual(['mail:send'])
    for (const c of [a1, b1, a2]) expect((await send(c)).status).toBe(201)
    const [m1, m2, m3] = mail.sent().slice(-3)
    expect([m1?.from, m2?.from, m3?.from]).toEqual(['alice', 'bob', 'alice'])
    expect(m3?.tokenId).toBe(m1?.tokenId)
    expect(m2?.tokenId).not.toBe(m1?.tokenId)
  })

  it('exchanges at every call by default: each credential is a new token, still the caller’s', async () => {
    const downstream = credentials()
    const alice = extraFor(await userToken(as, 'alice'))
    const bob = extraFor(await userToken(as, 'bob'))
    for (const extra of [alice, bob, alice]) await send(await downstream.of(extra).get('mail'))
    const [m1, m2, m3] = mail.sent().slice(-3)
    expect([m1?.from, m2?.from, m3?.from]).toEqual(['alice', 'bob', 'alice'])
    expect(new Set([m1?.tokenId, m2?.tokenId, m3?.tokenId]).size).toBe(3)
  })

  it('reuses a credential only for the very token it was exchanged from', async () => {
    const downstream = credentials({ reuseSeconds: 60 })
    // alice signs in twice (another agent, or again after a refresh): two tokens, two keys.
    const first = extraFor(await userToken(as, 'alice'))
    const second = extraFor(await userToken(as, 'alice'))
    await send(await downstream.of(first).get('mail'))
    await send(await downstream.of(second).get('mail'))
    const [m1, m2] = mail.sent().slice(-2)
    expect([m1?.from, m2?.from]).toEqual(['alice', 'alice'])
    expect(m2?.tokenId).not.toBe(m1?.tokenId)
  })

  it('does not use a grant revoked at the authorization server: the next credential is refused, naming the service', async () => {
    const downstream = credentials()
    const tokens = await signIn(as, 'alice')
    const alice = extraFor(tokens.access_token)
    expect((await send(await downstream.of(alice).get('mail'))).status).toBe(201)
    await revokeGrant(as, tokens.refresh_token!)
    // alice's access token itself has not expired; the exchange is where her grant is checked.
    const refused = await downstream
      .of(alice)
      .get('mail')
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(refused).toBeInstanceOf(DownstreamCredentialError)
    expect((refused as DownstreamCredentialError).code).toBe('ERR_DOWNSTREAM_REFUSED')
    expect((refused as DownstreamCredentialError).service).toBe('mail')
    expect((refused as Error).message).toMatch(
      /^no mail credential for this caller: the authorization server refused \(invalid_grant: .*the grant behind subject_token has been revoked/,
    )
  })

  it('never keeps a credential past the caller’s own token', async () => {
    const alice = extraFor(await userToken(as, 'alice'))
    // The expiry callproof verified, which may be earlier than the token's own `exp` (an
    // introspected token, say): a cached credential must not outlive it either.
    const verifiedUntil = Math.floor(Date.now() / 1000) + 30
    alice.authInfo.expiresAt = verifiedUntil
    const credential = await credentials().of(alice).get('mail')
    expect(credential.expiresAt).toBeLessThanOrEqual(verifiedUntil * 1000)
  })

  it('keys the cache by issuer too: another issuer’s “alice” does not get this alice’s credential, and her token is not sent to this issuer', async () => {
    const downstream = credentials()
    const alice = extraFor(await userToken(as, 'alice'))
    await downstream.of(alice).get('mail')
    // Same sub, same client id, another issuer: refused, and the token is not sent to an issuer
    // that did not issue it; a cache keyed by sub and client alone would answer instead.
    const impostor = extraFor(await userToken(otherAs, 'alice'))
    const refused = await downstream
      .of(impostor)
      .get('mail')
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(refused).toBeInstanceOf(DownstreamCredentialError)
    expect((refused as DownstreamCredentialError).code).toBe('ERR_DOWNSTREAM_REFUSED')
    expect((refused as Error).message).toBe(
      `no mail credential for this caller: their token is from ${otherAs.issuer}, and mail is exchanged at ${as.issuer}`,
    )
  })

  it('forgets a caller’s credentials on request', async () => {
    const downstream = credentials({ reuseSeconds: 60 })
    const alice = extraFor(await userToken(as, 'alice'))
    const first = await downstream.of(alice).get('mail')
    await send(first)
    await downstream.forget(alice)
    await send(await downstream.of(alice).get('mail'))
    const [m1, m2] = mail.sent().slice(-2)
    expect(m2?.tokenId).not.toBe(m1?.tokenId)
  })

  it('sends a credential only under its service’s resource', async () => {
    const credential = await credentials()
      .of(extraFor(await userToken(as, 'alice')))
      .get('mail')
    for (const target of ['http://127.0.0.1:1/messages', 'https://evil.example/', 'not a url']) {
      const refused = await credential.fetch(target, { method: 'POST' }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect((refused as DownstreamCredentialError).code).toBe('ERR_DOWNSTREAM_WRONG_TARGET')
    }
  })

  it('names the service for an unknown one, and refuses a request that callproof did not verify', async () => {
    const downstream = credentials()
    const unknown = await downstream
      .of(extraFor(await userToken(as, 'alice')))
      .get('github')
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect((unknown as DownstreamCredentialError).code).toBe('ERR_DOWNSTREAM_UNKNOWN_SERVICE')
    expect((unknown as Error).message).toBe(
      'no downstream service github is configured (known: mail)',
    )
    expect(() => downstream.of({})).toThrow(/no verified caller/)
  })

  it('records each credential handed out or refused, with the caller and never a token', async () => {
    const audit = memorySink()
    const downstream = createDownstreamCredentials({
      issuer: as.issuer,
      clientId: CLIENT,
      clientKey: clientKey.privateKey,
      services: { mail: { resource: mail.resource, scopes: ['mail:send'] } },
      reuseSeconds: 60,
      audit,
    })
    const alice = extraFor(await userToken(as, 'alice'))
    await downstream.of(alice).get('mail')
    await downstream.of(alice).get('mail')
    await downstream
      .of(alice)
      .get('github')
      .catch(() => undefined)
    expect(audit.events.map((e) => [e.decision, e.reason, e.downstream, e.sub, e.method])).toEqual([
      ['allowed', 'exchanged', 'mail', 'alice', 'downstream/credential'],
      ['allowed', 'cached', 'mail', 'alice', 'downstream/credential'],
      ['refused', 'ERR_DOWNSTREAM_UNKNOWN_SERVICE', 'github', 'alice', 'downstream/credential'],
    ])
    expect(JSON.stringify(audit.events)).not.toContain(alice.authInfo.token.split('.')[1]!)
  })

  it('is the only way to the mail API: a token the user got for it directly (no act) is refused', async () => {
    const keyPair = await oauth.generateKeyPair('ES256')
    const direct = await userToken(as, 'alice', {
      resource: mail.resource,
      scope: 'mail:send',
      keyPair,
    })
    expect(decodeJwt(direct).aud).toBe(mail.resource)
    const response = await fetch(`${mail.origin}/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `DPoP ${direct}`,
        dpop: await createProof(keyPair, {
          htm: 'POST',
          htu: `${mail.origin}/messages`,
          accessToken: direct,
        }),
      },
      body: JSON.stringify({ to: 'carol@example.com', subject: 's', text: 't' }),
    })
    expect(response.status).toBe(401)
    expect(mail.refused().at(-1)?.reason).toBe('not a delegated token: it names no actor (act)')
  })

  it('is refused by the mail API when its actor is not one the API accepts', async () => {
    const stranger = createDownstreamCredentials({
      issuer: as.issuer,
      clientId: STRANGER,
      clientKey: clientKey.privateKey,
      services: { mail: { resource: mail.resource, scopes: ['mail:send'] } },
    })
    const credential = await stranger.of(extraFor(await userToken(as, 'alice'))).get('mail')
    const response = await send(credential)
    expect(response.status).toBe(403)
    expect(mail.refused().at(-1)?.reason).toBe(`actor ${STRANGER} may not send on a user's behalf`)
  })

  it('checks its options when created', () => {
    const base = {
      issuer: 'https://as.example',
      clientId: CLIENT,
      clientKey: clientKey.privateKey,
      services: { mail: { resource: 'https://mail.example/', scopes: ['mail:send'] } },
    }
    expect(() => createDownstreamCredentials({ ...base, issuer: 'http://as.example' })).toThrow(
      /must use https/,
    )
    expect(() => createDownstreamCredentials({ ...base, clientKey: clientKey.publicKey })).toThrow(
      /private CryptoKey/,
    )
    expect(() => createDownstreamCredentials({ ...base, services: {} })).toThrow(/at least one/)
    expect(() => createDownstreamCredentials({ ...base, reuseSeconds: -1 })).toThrow(
      /reuseSeconds must be/,
    )
    expect(() =>
      createDownstreamCredentials({
        ...base,
        services: { mail: { resource: 'https://mail.example/', scopes: [] } },
      }),
    ).toThrow(/needs scopes/)
    expect(() =>
      createDownstreamCredentials({
        ...base,
        services: { mail: { resource: 'http://mail.example/', scopes: ['mail:send'] } },
      }),
    ).toThrow(/must use https/)
  })
})
