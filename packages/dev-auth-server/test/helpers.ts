import * as oauth from 'oauth4webapi'
import { expect } from 'vitest'
import { calculateJwkThumbprint, createRemoteJWKSet, exportJWK, jwtVerify } from 'jose'
import type { JWTHeaderParameters, JWTPayload } from 'jose'
import { DEV_CLIENT_ID, DEV_REDIRECT_URI, startDevAuthServer } from '../src/index.js'
import type { DevAuthServer, Interaction } from '../src/index.js'

export const RESOURCE = 'http://127.0.0.1:3999/mcp'
export const OTHER_RESOURCE = 'http://127.0.0.1:4999/mcp'

export const silent = { info() {}, warn() {}, error() {} }

export async function startServer(extra: { approvalTtl?: number } = {}): Promise<DevAuthServer> {
  return startDevAuthServer({
    resources: [
      { uri: RESOURCE, scopes: ['drive:read', 'drive:write', 'drive:share'] },
      { uri: OTHER_RESOURCE, scopes: ['mail:read'] },
    ],
    logger: silent,
    ...extra,
  })
}

const insecure = { [oauth.allowInsecureRequests]: true } as const

/** A DPoP-holding public client using oauth4webapi, as the client package will. */
export class TestClient {
  readonly client: oauth.Client
  private constructor(
    readonly as: oauth.AuthorizationServer,
    readonly keyPair: CryptoKeyPair,
    clientId: string,
    readonly redirectUri: string,
  ) {
    this.client = { client_id: clientId }
  }

  static async create(issuer: string, options: { clientId?: string; redirectUri?: string } = {}) {
    const url = new URL(issuer)
    const as = await oauth.processDiscoveryResponse(
      url,
      await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
    )
    const keyPair = await oauth.generateKeyPair('ES256')
    return new TestClient(
      as,
      keyPair,
      options.clientId ?? DEV_CLIENT_ID,
      options.redirectUri ?? DEV_REDIRECT_URI,
    )
  }

  async jkt(): Promise<string> {
    return calculateJwkThumbprint(await exportJWK(this.keyPair.publicKey))
  }

  dpop(): oauth.DPoPHandle {
    return oauth.DPoP(this.client, this.keyPair)
  }

  /** Builds an authorization URL; `params` override or add parameters. */
  async authorizationUrl(params: Record<string, string | undefined> = {}) {
    const verifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const url = new URL(this.as.authorization_endpoint!)
    const all: Record<string, string | undefined> = {
      client_id: this.client.client_id,
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: 'drive:read',
      resource: RESOURCE,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      // Required by the server (a client without DPoP learns it before signing in).
      dpop_jkt: await this.jkt(),
      ...params,
    }
    for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v)
    return { url, verifier, state }
  }

  async exchange(callback: URL, verifier: string, state: string, dpop = this.dpop()) {
    const params = oauth.validateAuthResponse(this.as, this.client, callback, state)
    const response = await oauth.authorizationCodeGrantRequest(
      this.as,
      this.client,
      oauth.None(),
      params,
      this.redirectUri,
      verifier,
      { DPoP: dpop, ...insecure },
    )
    return oauth.processAuthorizationCodeResponse(this.as, this.client, response)
  }

  async refresh(refreshToken: string, dpop = this.dpop()) {
    const response = await oauth.refreshTokenGrantRequest(
      this.as,
      this.client,
      oauth.None(),
      refreshToken,
      { DPoP: dpop, ...insecure },
    )
    return oauth.processRefreshTokenResponse(this.as, this.client, response)
  }

  /** Full flow: authorize through `interaction`, exchange the code. */
  async login(
    interaction: Interaction,
    params: Record<string, string | undefined> = {},
    reason: 'authorize' | 'scope' | 'step_up' | 'approval' = 'authorize',
  ) {
    const { url, verifier, state } = await this.authorizationUrl(params)
    const callback = await interaction.authorize(url, { reason })
    return this.exchange(callback, verifier, state)
  }

  async verify(
    token: string,
    audience = RESOURCE,
  ): Promise<{
    header: JWTHeaderParameters
    payload: JWTPayload & Record<string, unknown>
  }> {
    const jwks = createRemoteJWKSet(new URL(this.as.jwks_uri!))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: this.as.issuer,
      audience,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    })
    return { header: protectedHeader, payload: payload as JWTPayload & Record<string, unknown> }
  }
}

/** Expects an oauth4webapi error response with this `error` code and a matching description. */
export async function expectOAuthError(
  promise: Promise<unknown>,
  error: string,
  description: RegExp,
): Promise<void> {
  const failure = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!(failure instanceof oauth.ResponseBodyError)) {
    throw new Error(`expected an OAuth error response ${error}, got ${String(failure)}`)
  }
  expect(failure.error).toBe(error)
  expect(failure.error_description ?? '').toMatch(description)
}

export { oauth, insecure }
