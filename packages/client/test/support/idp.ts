// A stand-in enterprise identity provider on 127.0.0.1 for enterprise-managed authorization:
// OpenID discovery and an RFC 8693 token exchange that turns the ID tokens it issued into ID-JAGs
// (typ oauth-id-jag+jwt, signed with its own key). No IdP in this repository issues ID-JAGs, and
// the client's refusals need an IdP that misbehaves on demand (`misbehave`), which no real one
// does; the authorization server on the other side is the real development authorization server.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose'

export type Misbehaviour =
  'none' | 'wrong-audience' | 'wrong-resource' | 'wrong-client' | 'wrong-typ' | 'wrong-token-type'

export interface TestIdp {
  issuer: string
  /** The IdP's public key, for the authorization server's `jwtBearer` trust. */
  publicJwk: JWK
  /** An ID token for `user`, audience the client's id at the IdP. */
  idToken(user: string): Promise<string>
  /** The parameters of every token exchange request, in order. */
  readonly exchanges: URLSearchParams[]
  /** What the next ID-JAGs get wrong. */
  misbehave: Misbehaviour
  close(): Promise<void>
}

export async function startTestIdp(options: {
  /** The client's id at the IdP (the ID token's audience). */
  idpClientId: string
  /** The client's id at the MCP authorization server (the ID-JAG's client_id). */
  mcpClientId: string
}): Promise<TestIdp> {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const exchanges: URLSearchParams[] = []
  let issuer = ''
  const state = { misbehave: 'none' as Misbehaviour }

  async function exchange(params: URLSearchParams): Promise<[number, unknown]> {
    exchanges.push(params)
    if (params.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange') {
      return [400, { error: 'unsupported_grant_type' }]
    }
    if (params.get('requested_token_type') !== 'urn:ietf:params:oauth:token-type:id-jag') {
      return [400, { error: 'invalid_request', error_description: 'requested_token_type' }]
    }
    if (params.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:id_token') {
      return [400, { error: 'invalid_request', error_description: 'subject_token_type' }]
    }
    let sub: string
    try {
      const { payload } = await jwtVerify(params.get('subject_token') ?? '', publicKey, {
        issuer,
        audience: options.idpClientId,
      })
      sub = payload.sub as string
    } catch {
      return [400, { error: 'invalid_grant', error_description: 'subject_token' }]
    }
    const m = state.misbehave
    const idJag = await new SignJWT({
      sub,
      client_id: m === 'wrong-client' ? 'someone-else' : options.mcpClientId,
      resource: m === 'wrong-resource' ? 'http://127.0.0.1:1/other' : params.get('resource'),
    })
      .setProtectedHeader({ alg: 'ES256', typ: m === 'wrong-typ' ? 'JWT' : 'oauth-id-jag+jwt' })
      .setIssuer(issuer)
      .setAudience(
        m === 'wrong-audience' ? 'https://other-as.example' : (params.get('audience') ?? ''),
      )
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(crypto.randomUUID())
      .sign(privateKey)
    return [
      200,
      {
        access_token: idJag,
        issued_token_type:
          m === 'wrong-token-type'
            ? 'urn:ietf:params:oauth:token-type:access_token'
            : 'urn:ietf:params:oauth:token-type:id-jag',
        token_type: 'N_A',
        expires_in: 300,
      },
    ]
  }

  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      send(200, {
        issuer,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      })
      return
    }
    if (req.method === 'POST' && req.url === '/token') {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        exchange(new URLSearchParams(body)).then(
          ([status, out]) => send(status, out),
          () => send(500, { error: 'server_error' }),
        )
      })
      return
    }
    send(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    publicJwk: { ...(await exportJWK(publicKey)), alg: 'ES256' },
    idToken: (user) =>
      new SignJWT({ sub: user })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(issuer)
        .setAudience(options.idpClientId)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey),
    exchanges,
    get misbehave() {
      return state.misbehave
    },
    set misbehave(value: Misbehaviour) {
      state.misbehave = value
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
