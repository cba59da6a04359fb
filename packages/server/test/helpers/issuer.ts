/**
 * A tiny local authorization server for tests: real RFC 8414 metadata, a real JWKS endpoint and
 * an RFC 7662 introspection endpoint on 127.0.0.1, and a function that mints DPoP-bound access
 * tokens (RFC 9068) with its current key.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import { jwkThumbprint } from '@callproof/core'

export interface TestIssuer {
  readonly issuer: string
  /** Mints an access token; `claims` override the defaults. */
  mint(claims: Record<string, unknown>, options?: { kid?: string; typ?: string }): Promise<string>
  /** Replaces the signing key with a new one (new kid); the old key leaves the JWKS. */
  rotate(): Promise<void>
  /** The current key id. */
  readonly kid: string
  /** Paths requested so far. */
  readonly requests: string[]
  /** Overrides the `issuer` member of the served metadata (to test the equality check). */
  metadataIssuer: string | undefined
  /** Opaque tokens known to the introspection endpoint, and the answer for each. */
  readonly opaque: Map<string, Record<string, unknown>>
  /** Client credentials the introspection endpoint accepts. */
  readonly introspectionClient: { id: string; secret: string }
  /** The Authorization headers introspection saw. */
  readonly introspectionAuth: (string | undefined)[]
  close(): Promise<void>
}

export async function startIssuer(): Promise<TestIssuer> {
  let key = await generateKeyPair('ES256')
  let kid = crypto.randomUUID()
  let publicJwk: JWK = { ...(await exportJWK(key.publicKey)), kid, alg: 'ES256', use: 'sig' }
  const requests: string[] = []
  const opaque = new Map<string, Record<string, unknown>>()
  const introspectionClient = { id: 'drive-api', secret: 's3cret:with/odd chars' }
  const introspectionAuth: (string | undefined)[] = []

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    requests.push(path)
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (path === '/.well-known/oauth-authorization-server') {
      return json(200, {
        issuer: state.metadataIssuer ?? issuer,
        jwks_uri: `${issuer}/jwks`,
        introspection_endpoint: `${issuer}/introspect`,
        token_endpoint: `${issuer}/token`,
      })
    }
    if (path === '/jwks') return json(200, { keys: [publicJwk] })
    if (path === '/introspect' && req.method === 'POST') {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => (body += chunk))
      req.on('end', () => {
        introspectionAuth.push(req.headers.authorization)
        const expected = `Basic ${Buffer.from(
          `${encodeURIComponent(introspectionClient.id)}:${encodeURIComponent(introspectionClient.secret)}`,
        ).toString('base64')}`
        if (req.headers.authorization !== expected) return json(401, { error: 'invalid_client' })
        const token = new URLSearchParams(body).get('token') ?? ''
        json(200, opaque.get(token) ?? { active: false })
      })
      return
    }
    json(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const state = {
    issuer,
    requests,
    opaque,
    introspectionClient,
    introspectionAuth,
    metadataIssuer: undefined as string | undefined,
    get kid() {
      return kid
    },
    async mint(claims: Record<string, unknown>, options: { kid?: string; typ?: string } = {}) {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({
        iss: issuer,
        iat: now,
        exp: now + 300,
        jti: crypto.randomUUID(),
        sub: 'alice',
        client_id: 'test-client',
        scope: 'drive:read',
        ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', typ: options.typ ?? 'at+jwt', kid: options.kid ?? kid })
        .sign(key.privateKey)
    },
    async rotate() {
      key = await generateKeyPair('ES256')
      kid = crypto.randomUUID()
      publicJwk = { ...(await exportJWK(key.publicKey)), kid, alg: 'ES256', use: 'sig' }
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
  return state
}

/** A client key pair and its thumbprint. */
export interface ClientKey {
  readonly keyPair: CryptoKeyPair
  readonly jkt: string
}

export async function clientKey(): Promise<ClientKey> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
  return { keyPair, jkt: await jwkThumbprint(jwk as JWK) }
}
