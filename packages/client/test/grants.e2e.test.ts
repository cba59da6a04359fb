// Agents without a user at the keyboard, end to end against the real development authorization
// server (oidc-provider, its JWT-bearer grant) and the real drive: workload identity federation
// and enterprise-managed authorization (an ID-JAG from a stand-in enterprise IdP, see
// support/idp.ts), each ending in a DPoP-bound token the drive accepts, and every refusal the
// client makes before an assertion leaves it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, generateKeyPair, exportJWK } from 'jose'
import { jwkThumbprint } from '@callproof/core'
import { JWT_BEARER_GRANT } from '@callproof/dev-auth-server'
import {
  CallproofClientError,
  connect,
  generateProofKeyPair,
  type ConnectOptions,
} from '../src/index.js'
import { startTestIdp, type Misbehaviour, type TestIdp } from './support/idp.js'
import { text } from './support/mcp.js'
import { startWorld, type World } from './support/world.js'

const PLATFORM = 'https://platform.test.example'
const WORKLOAD_CLIENT = 'reporting-agent'
const WORKLOAD_SUBJECT = 'system:serviceaccount:ci:reporting-agent'
const ENTERPRISE_CLIENT = 'enterprise-mcp-client'
const IDP_CLIENT = 'mcp-client-at-idp'

let world: World
let idp: TestIdp
let platformKey: CryptoKey
let dir: string

/** The requests the client sent, by URL, through the `fetch` option (init passed on unchanged). */
const sent: Array<{ url: string; init: RequestInit | undefined }> = []
const recordingFetch: typeof fetch = (input, init) => {
  sent.push({ url: input instanceof Request ? input.url : String(input), init })
  return fetch(input, init)
}
const tokenRequests = () => sent.filter((r) => r.url === `${world.issuer}/token`)

function workloadToken(claims: Record<string, unknown> = {}, exp = '5m'): Promise<string> {
  return new SignJWT({ sub: WORKLOAD_SUBJECT, aud: world.issuer, ...claims })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(PLATFORM)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(platformKey)
}

beforeAll(async () => {
  const platform = await generateKeyPair('ES256')
  platformKey = platform.privateKey
  idp = await startTestIdp({ idpClientId: IDP_CLIENT, mcpClientId: ENTERPRISE_CLIENT })
  const agent = (id: string) => ({
    client_id: id,
    token_endpoint_auth_method: 'none',
    grant_types: [JWT_BEARER_GRANT],
    response_types: [],
    redirect_uris: [],
  })
  world = await startWorld({
    auth: {
      clients: [agent(WORKLOAD_CLIENT), agent(ENTERPRISE_CLIENT)],
      jwtBearer: [
        {
          kind: 'workload',
          issuer: PLATFORM,
          keys: [{ ...(await exportJWK(platform.publicKey)), alg: 'ES256' }],
          client: WORKLOAD_CLIENT,
          subject: WORKLOAD_SUBJECT,
          scopes: ['drive:read'],
        },
        { kind: 'id-jag', issuer: idp.issuer, keys: [idp.publicJwk], clients: [ENTERPRISE_CLIENT] },
      ],
    },
  })
  dir = await mkdtemp(join(tmpdir(), 'callproof-grants-'))
})
afterAll(async () => {
  await world?.close()
  await idp?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function whoami(options: ConnectOptions & { keyPair: CryptoKeyPair }) {
  const client = await connect(world.drive.url, {
    development: true,
    fetch: recordingFetch,
    ...options,
  })
  try {
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    const files = await client.callTool({ name: 'list_files', arguments: {} })
    return { who, files }
  } finally {
    await client.close()
  }
}

async function refusal(promise: Promise<unknown>): Promise<CallproofClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CallproofClientError)
  return error as CallproofClientError
}

const thumbprint = async (keyPair: CryptoKeyPair) =>
  jwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey))

describe('workload identity federation', () => {
  it('reaches the drive with a DPoP-bound token, the assertion read from a file', async () => {
    const file = join(dir, 'token')
    await writeFile(file, `${await workloadToken()}\n`)
    const keyPair = await generateProofKeyPair()
    sent.length = 0
    const { who, files } = await whoami({
      keyPair,
      // The workload may have drive:read only; the drive's metadata lists more.
      scopes: ['drive:read'],
      workloadIdentity: { clientId: WORKLOAD_CLIENT, assertion: { file } },
    })
    expect(who.sub).toBe(WORKLOAD_SUBJECT)
    // Bound to the very key that signs the proofs; the token request carried a DPoP proof.
    expect(who.jkt).toBe(await thumbprint(keyPair))
    const [request] = tokenRequests()
    expect(new Headers(request!.init?.headers).get('dpop')).toMatch(/^ey/)
    expect(String(request!.init?.body)).toContain(
      `grant_type=${encodeURIComponent(JWT_BEARER_GRANT)}`,
    )
    expect((files as { isError?: boolean }).isError).not.toBe(true)
  })

  it('never sends an assertion addressed to another server', async () => {
    sent.length = 0
    const error = await refusal(
      whoami({
        keyPair: await generateProofKeyPair(),
        workloadIdentity: {
          clientId: WORKLOAD_CLIENT,
          assertion: await workloadToken({ aud: 'https://other-as.example' }),
        },
      }),
    )
    expect(error.code).toBe('ERR_ASSERTION_INVALID')
    expect(error.message).toContain('other-as.example')
    expect(tokenRequests()).toHaveLength(0)
  })

  it('never sends an expired assertion', async () => {
    sent.length = 0
    const error = await refusal(
      whoami({
        keyPair: await generateProofKeyPair(),
        workloadIdentity: {
          clientId: WORKLOAD_CLIENT,
          assertion: () => workloadToken({}, '-1m'),
        },
      }),
    )
    expect(error.code).toBe('ERR_ASSERTION_INVALID')
    expect(error.message).toMatch(/expired/)
    expect(tokenRequests()).toHaveLength(0)
  })

  it("surfaces the server's refusal without retrying or switching grants", async () => {
    sent.length = 0
    const error = await refusal(
      whoami({
        keyPair: await generateProofKeyPair(),
        workloadIdentity: {
          clientId: WORKLOAD_CLIENT,
          assertion: await workloadToken({ sub: 'system:serviceaccount:ci:intruder' }),
        },
      }),
    )
    expect(error.code).toBe('ERR_TOKEN_REQUEST_FAILED')
    expect(error.message).toMatch(/unauthorized_client/)
    expect(tokenRequests()).toHaveLength(1)
  })
})

describe('enterprise-managed authorization (ID-JAG)', () => {
  const enterprise = async () => ({
    clientId: ENTERPRISE_CLIENT,
    idp: { issuer: idp.issuer, clientId: IDP_CLIENT },
    idToken: await idp.idToken('alice'),
  })

  it('trades the ID token for an ID-JAG for this server, then a DPoP-bound token', async () => {
    idp.misbehave = 'none'
    idp.exchanges.length = 0
    sent.length = 0
    const keyPair = await generateProofKeyPair()
    const { who } = await whoami({ keyPair, enterpriseAuthorization: await enterprise() })
    expect(who.sub).toBe('alice')
    expect(who.jkt).toBe(await thumbprint(keyPair))
    const [exchange] = idp.exchanges
    expect(exchange!.get('audience')).toBe(world.issuer)
    expect(exchange!.get('resource')).toBe(world.drive.resource)
    expect(exchange!.get('requested_token_type')).toBe('urn:ietf:params:oauth:token-type:id-jag')
    expect(exchange!.get('subject_token_type')).toBe('urn:ietf:params:oauth:token-type:id_token')
    expect(exchange!.get('client_id')).toBe(IDP_CLIENT)
    const [request] = tokenRequests()
    expect(new Headers(request!.init?.headers).get('dpop')).toMatch(/^ey/)
  })

  it.each<[Misbehaviour, RegExp]>([
    ['wrong-audience', /is for "https:\/\/other-as\.example"/],
    ['wrong-resource', /names the resource/],
    ['wrong-client', /issued to client "someone-else"/],
    ['wrong-typ', /has typ "JWT"/],
    ['wrong-token-type', /not an ID-JAG/],
  ])('never forwards an ID-JAG with %s', async (misbehaviour, message) => {
    idp.misbehave = misbehaviour
    sent.length = 0
    try {
      const error = await refusal(
        whoami({
          keyPair: await generateProofKeyPair(),
          enterpriseAuthorization: await enterprise(),
        }),
      )
      expect(error.code).toBe('ERR_ASSERTION_INVALID')
      expect(error.message).toMatch(message)
      expect(tokenRequests()).toHaveLength(0)
    } finally {
      idp.misbehave = 'none'
    }
  })
})
