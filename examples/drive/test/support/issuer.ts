/**
 * A local test authorization server: real RFC 8414 metadata and a real JWKS on 127.0.0.1, and a
 * token minter with a knob for every property the drive must check. It is deliberately NOT the dev
 * authorization server (oidc-provider): these tests need tokens the real server would never issue
 * (expired, unbound, HMAC-signed, wrong `typ`, …) to prove that each one is refused.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair, base64url } from 'jose'
import type { CryptoKey, JWK, JWTPayload } from 'jose'

/** Scopes, ACR values and times as the drive example pins them (DESIGN.md). */
export const ACR_PWD = 'urn:callproof:acr:pwd'
export const ACR_MFA = 'urn:callproof:acr:mfa'
export const ALL_SCOPES = 'drive:read drive:write drive:share'

/** What the minted token should look like; every field has a sound default. */
export interface MintOptions {
  /** The caller's key thumbprint (cnf.jkt). `null` mints an unbound token (no `cnf`). */
  jkt: string | null
  sub?: string
  clientId?: string
  scope?: string | null
  /** A string or several; default: the drive's resource. */
  aud?: string | string[] | null
  iss?: string
  /** Seconds relative to now. */
  expiresIn?: number
  iatOffset?: number
  acr?: string | null
  /** Seconds ago the user logged in (auth_time = now - authAgo). */
  authAgo?: number | null
  authorizationDetails?: unknown[]
  jti?: string
  /** Header `typ`; `null` omits it. */
  typ?: string | null
  /** Extra or overriding claims, applied last; a value `undefined` deletes the claim. */
  claims?: Record<string, unknown>
  /** Sign with this key instead of the issuer's (a "wrongly signed" token keeps the issuer's kid). */
  signWith?: CryptoKey
  /** Override the header kid. */
  kid?: string
}

/** A running test issuer. */
export interface TestIssuer {
  /** The issuer identifier (`http://127.0.0.1:<port>`, no trailing slash). */
  url: string
  /** The resource the tokens are for by default (set after the drive starts). */
  resource: string
  /** Mint an ES256 RFC 9068 access token. */
  mint(options: MintOptions): Promise<string>
  /** Mint an HS256 token with the given secret and otherwise the same claims (must be refused). */
  mintHmac(options: MintOptions, secret?: Uint8Array): Promise<string>
  /** An unsigned `alg: none` token with the same claims (must be refused). */
  mintNone(options: MintOptions): string
  /** How many times the JWKS has been fetched (proves the server really discovers keys). */
  jwksFetches: number
  close(): Promise<void>
}

/**
 * Start a test issuer on 127.0.0.1 (port 0). `resource` may be set later (`issuer.resource = …`)
 * because the drive's port is only known once it listens.
 */
export async function startIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = randomUUID()
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }

  let url = ''
  let jwksFetches = 0
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', url).pathname
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify(body))
    }
    if (
      path === '/.well-known/oauth-authorization-server' ||
      path === '/.well-known/openid-configuration'
    ) {
      json(200, {
        issuer: url,
        jwks_uri: `${url}/jwks`,
        authorization_endpoint: `${url}/authorize`,
        token_endpoint: `${url}/token`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
        scopes_supported: ALL_SCOPES.split(' '),
        authorization_details_types_supported: ['mcp_tool_call'],
        acr_values_supported: [ACR_PWD, ACR_MFA],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
      })
      return
    }
    if (path === '/jwks') {
      jwksFetches += 1
      issuer.jwksFetches = jwksFetches
      json(200, { keys: [publicJwk] })
      return
    }
    json(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const claimsFor = (o: MintOptions): JWTPayload => {
    const now = Math.floor(Date.now() / 1000)
    const iat = now + (o.iatOffset ?? 0)
    const claims: Record<string, unknown> = {
      iss: o.iss ?? url,
      sub: o.sub ?? 'alice',
      aud: o.aud === undefined ? issuer.resource : o.aud,
      exp: now + (o.expiresIn ?? 600),
      iat,
      jti: o.jti ?? randomUUID(),
      client_id: o.clientId ?? 'drive-test-client',
      scope: o.scope === undefined ? ALL_SCOPES : o.scope,
      cnf: o.jkt === null ? undefined : { jkt: o.jkt },
      acr: o.acr === undefined ? ACR_PWD : o.acr,
      auth_time: o.authAgo === null ? undefined : now - (o.authAgo ?? 30),
      authorization_details: o.authorizationDetails,
    }
    for (const [name, value] of Object.entries(o.claims ?? {})) claims[name] = value
    for (const name of Object.keys(claims)) {
      if (claims[name] === undefined || claims[name] === null) delete claims[name]
    }
    return claims as JWTPayload
  }

  const issuer: TestIssuer = {
    url,
    resource: '',
    jwksFetches: 0,
    async mint(o) {
      const header: Record<string, unknown> = { alg: 'ES256', kid: o.kid ?? kid }
      const typ = o.typ === undefined ? 'at+jwt' : o.typ
      if (typ !== null) header.typ = typ
      return new SignJWT(claimsFor(o))
        .setProtectedHeader(header as { alg: string })
        .sign(o.signWith ?? privateKey)
    },
    async mintHmac(o, secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef')) {
      return new SignJWT(claimsFor(o))
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .sign(secret)
    },
    mintNone(o) {
      const enc = (v: unknown) => base64url.encode(JSON.stringify(v))
      return `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc(claimsFor(o))}.`
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      }),
  }
  return issuer
}
