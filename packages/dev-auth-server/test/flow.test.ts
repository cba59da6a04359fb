import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACR_MFA, ACR_PASSWORD, DevInteractionError, devInteraction } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import {
  OTHER_RESOURCE,
  RESOURCE,
  TestClient,
  expectOAuthError,
  oauth,
  startServer,
} from './helpers.js'

let server: DevAuthServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})

/**
 * Waits until the clock is in a later second than `authTime`. An intended wait, not a race:
 * auth_time has one-second resolution and oidc-provider stamps it from its own clock (the dev
 * server takes no clock), so only real time passing lets a new sign-in get another auth_time than
 * the first. Any extra delay changes nothing below: a kept (SSO) sign-in keeps the old auth_time
 * however late, and a new sign-in after this gets a later one.
 */
async function pastSecond(authTime: unknown): Promise<void> {
  expect(authTime).toBeTypeOf('number')
  while (Math.floor(Date.now() / 1000) <= (authTime as number)) {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 1))
  }
}

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

  it('issues tokens per resource indicator: aud is the one resource asked for', async () => {
    const client = await TestClient.create(server.issuer)
    const tokens = await client.login(devInteraction({ user: 'bob' }), {
      scope: 'mail:read drive:read',
      resource: OTHER_RESOURCE,
    })
    const { payload } = await client.verify(tokens.access_token, OTHER_RESOURCE)
    expect(payload.aud).toBe(OTHER_RESOURCE)
    expect(payload.sub).toBe('bob')
    // drive:read belongs to the other resource and must not leak into this token.
    expect(payload.scope).toBe('mail:read')
    await expect(client.verify(tokens.access_token, RESOURCE)).rejects.toThrow(/aud/)
  })

  it('steps up to MFA when acr_values asks for it (OAuth request without openid)', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const first = await client.login(alice)
    expect((await client.verify(first.access_token)).payload.acr).toBe(ACR_PASSWORD)
    const stepped = await client.login(alice, { acr_values: ACR_MFA }, 'step_up')
    const { payload } = await client.verify(stepped.access_token)
    expect(payload.acr).toBe(ACR_MFA)
    // The MFA page is shown only on the step-up, after a fresh password sign-in.
    expect(alice.pages.map((p) => p.form)).toEqual(['login', 'consent', 'login', 'mfa', 'consent'])
    // An MFA session satisfies later password-level requests without asking again.
    const later = await client.login(alice, { acr_values: ACR_PASSWORD })
    expect((await client.verify(later.access_token)).payload.acr).toBe(ACR_MFA)
    expect(alice.pages.at(-1)?.form).toBe('consent')
  })

  it('steps up with acr_values in an OpenID request too', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const { url, verifier, state } = await client.authorizationUrl({
      scope: 'openid drive:read',
      acr_values: ACR_MFA,
      nonce: 'n-0S6_WzA2Mj',
    })
    const callback = await alice.authorize(url, { reason: 'step_up' })
    const params = oauth.validateAuthResponse(client.as, client.client, callback, state)
    const response = await oauth.authorizationCodeGrantRequest(
      client.as,
      client.client,
      oauth.None(),
      params,
      client.redirectUri,
      verifier,
      { DPoP: client.dpop(), [oauth.allowInsecureRequests]: true },
    )
    const tokens = await oauth.processAuthorizationCodeResponse(
      client.as,
      client.client,
      response,
      {
        expectedNonce: 'n-0S6_WzA2Mj',
        requireIdToken: true,
      },
    )
    expect((await client.verify(tokens.access_token)).payload.acr).toBe(ACR_MFA)
    expect(oauth.getValidatedIdTokenClaims(tokens)?.acr).toBe(ACR_MFA)
  })

  it('a wrong MFA code is refused and no code is issued', async () => {
    const client = await TestClient.create(server.issuer)
    const { url } = await client.authorizationUrl({ acr_values: ACR_MFA })
    await expect(
      devInteraction({ user: 'alice', mfaCode: '000000' }).authorize(url, { reason: 'step_up' }),
    ).rejects.toThrow(/mfa refused: Wrong code/)
  })

  it('keeps the sign-in (SSO) without max_age; max_age forces a new sign-in and a new auth_time', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const first = await client.verify((await client.login(alice)).access_token)
    await pastSecond(first.payload.auth_time)
    const again = await client.verify((await client.login(alice)).access_token)
    expect(again.payload.auth_time).toBe(first.payload.auth_time)
    expect(alice.pages.map((p) => p.form)).toEqual(['login', 'consent', 'consent'])
    const fresh = await client.verify((await client.login(alice, { max_age: '0' })).access_token)
    expect(alice.pages.at(-2)?.form).toBe('login')
    expect(fresh.payload.auth_time).toBeGreaterThan(first.payload.auth_time as number)
    // A generous max_age is satisfied by the existing session.
    const pagesBefore = alice.pages.length
    await client.login(alice, { max_age: '600' })
    expect(alice.pages.slice(pagesBefore).map((p) => p.form)).toEqual(['consent'])
  })

  it('prompt=login forces a new sign-in', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const first = await client.verify((await client.login(alice)).access_token)
    await pastSecond(first.payload.auth_time)
    const relogin = await client.verify(
      (await client.login(alice, { prompt: 'login' })).access_token,
    )
    expect(alice.pages.map((p) => p.form)).toEqual(['login', 'consent', 'login', 'consent'])
    expect(relogin.payload.auth_time).toBeGreaterThan(first.payload.auth_time as number)
  })

  it('a re-authentication cannot switch to another user', async () => {
    const client = await TestClient.create(server.issuer)
    // One browser (one cookie jar): alice signs in, then someone types bob's credentials on the
    // re-login page. The options object is read at each step, so the test can change the typist.
    const typist: { user: string; password?: string } = { user: 'alice' }
    const browser = devInteraction(typist)
    await client.login(browser)
    typist.user = 'bob'
    const { url } = await client.authorizationUrl({ prompt: 'login' })
    await expect(browser.authorize(url, { reason: 'authorize' })).rejects.toThrow(
      /login refused: You are signed in as alice/,
    )
  })

  it('honours dpop_jkt: the code is bound to the key named in the authorization request', async () => {
    const client = await TestClient.create(server.issuer)
    const other = await TestClient.create(server.issuer)
    const { url, verifier, state } = await client.authorizationUrl({ dpop_jkt: await client.jkt() })
    const callback = await devInteraction({ user: 'alice' }).authorize(url, { reason: 'authorize' })
    await expectOAuthError(
      client.exchange(callback, verifier, state, other.dpop()),
      'invalid_grant',
      /dpop_jkt/,
    )
    const {
      url: url2,
      verifier: v2,
      state: s2,
    } = await client.authorizationUrl({
      dpop_jkt: await client.jkt(),
    })
    const cb2 = await devInteraction({ user: 'alice' }).authorize(url2, { reason: 'authorize' })
    const tokens = await client.exchange(cb2, v2, s2)
    expect((await client.verify(tokens.access_token)).payload.cnf).toEqual({
      jkt: await client.jkt(),
    })
  })

  it('refuses to issue a token without a DPoP proof', async () => {
    const client = await TestClient.create(server.issuer)
    const { url, verifier, state } = await client.authorizationUrl()
    const callback = await devInteraction({ user: 'alice' }).authorize(url, { reason: 'authorize' })
    const params = oauth.validateAuthResponse(client.as, client.client, callback, state)
    const response = await oauth.authorizationCodeGrantRequest(
      client.as,
      client.client,
      oauth.None(),
      params,
      client.redirectUri,
      verifier,
      { [oauth.allowInsecureRequests]: true },
    )
    await expectOAuthError(
      oauth.processAuthorizationCodeResponse(client.as, client.client, response),
      'invalid_grant',
      /DPoP proof JWT not provided/,
    )
  })
})

describe('refresh tokens', () => {
  it('rotate on every use, stay bound to the DPoP key, and a reused one revokes the grant', async () => {
    const client = await TestClient.create(server.issuer)
    const tokens = await client.login(devInteraction({ user: 'alice' }), { acr_values: ACR_MFA })
    const first = await client.verify(tokens.access_token)
    expect(tokens.refresh_token).toBeTypeOf('string')
    const rt1 = tokens.refresh_token!

    // Another key cannot use it (public client: the refresh token is DPoP-bound).
    const thief = await TestClient.create(server.issuer)
    await expectOAuthError(client.refresh(rt1, thief.dpop()), 'invalid_grant', /jkt/)

    const refreshed = await client.refresh(rt1)
    const rt2 = refreshed.refresh_token!
    expect(rt2).toBeTypeOf('string')
    expect(rt2).not.toBe(rt1)
    const second = await client.verify(refreshed.access_token)
    expect(second.payload.cnf).toEqual({ jkt: await client.jkt() })
    expect(second.payload.acr).toBe(ACR_MFA)
    expect(second.payload.auth_time).toBe(first.payload.auth_time)
    expect(second.payload.aud).toBe(RESOURCE)
    expect(second.payload.jti).not.toBe(first.payload.jti)

    // The old one is refused...
    await expectOAuthError(client.refresh(rt1), 'invalid_grant', /refresh token already used/)
    // ...and its reuse revoked the grant, so the current one dies too (replay detection).
    await expectOAuthError(client.refresh(rt2), 'invalid_grant', /.*/)
  })
})

describe('the headless driver', () => {
  it('refuses authorization URLs that are not on loopback', async () => {
    await expect(
      devInteraction({ user: 'alice' }).authorize(new URL('https://example.com/auth'), {
        reason: 'authorize',
      }),
    ).rejects.toBeInstanceOf(DevInteractionError)
  })

  it('refuses hosts that only look local (core isLoopbackHost decides), before any request', async () => {
    for (const url of [
      'http://0.0.0.0:9/auth',
      'http://[::]:9/auth',
      'http://localhost.example/auth',
      'http://127.0.0.1.nip.io/auth',
    ]) {
      await expect(
        devInteraction({ user: 'alice' }).authorize(new URL(url), { reason: 'authorize' }),
        url,
      ).rejects.toThrow(/only talks to loopback hosts/)
    }
  })

  it('reports a wrong password instead of looping', async () => {
    const client = await TestClient.create(server.issuer)
    const { url } = await client.authorizationUrl()
    await expect(
      devInteraction({ user: 'alice', password: 'guess' }).authorize(url, { reason: 'authorize' }),
    ).rejects.toThrow(/login refused: Wrong user name or password/)
    await expect(
      devInteraction({ user: 'mallory' }).authorize((await client.authorizationUrl()).url, {
        reason: 'authorize',
      }),
    ).rejects.toThrow(/login refused/)
  })

  it('denying consent ends the flow with access_denied at the client', async () => {
    const client = await TestClient.create(server.issuer)
    const { url, state } = await client.authorizationUrl()
    const callback = await devInteraction({ user: 'alice', consent: false }).authorize(url, {
      reason: 'authorize',
    })
    expect(callback.searchParams.get('error')).toBe('access_denied')
    expect(callback.searchParams.get('code')).toBeNull()
    expect(callback.searchParams.get('state')).toBe(state)
    expect(callback.searchParams.get('iss')).toBe(server.issuer)
  })
})
