// The agent grants' building blocks: where assertions come from and how they are refused before
// anything is sent, and which grant a session picks. The flows themselves run end to end in
// grants.e2e.test.ts and in the conformance suite.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, generateKeyPair } from 'jose'
import * as oauth from 'oauth4webapi'
import { agentGrantOf } from '../src/grants/agent.js'
import { JWT_BEARER_GRANT, jwtBearerGrant } from '../src/grants/jwt-bearer.js'
import { audienceIncludes, readAssertion } from '../src/grants/source.js'
import { oauthContext } from '../src/oauth.js'
import { CallproofClientError, CallproofSession, generateProofKeyPair } from '../src/index.js'
import { startFake } from './support/fake.js'

let dir: string
let jwt: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'callproof-source-'))
  const { privateKey } = await generateKeyPair('ES256')
  jwt = await new SignJWT({ sub: 'w', aud: 'https://as.example' })
    .setProtectedHeader({ alg: 'ES256' })
    .setExpirationTime('5m')
    .sign(privateKey)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

async function refusal(promise: Promise<unknown>): Promise<CallproofClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CallproofClientError)
  return error as CallproofClientError
}

describe('assertion sources', () => {
  it('reads a file anew each time, ignoring the trailing newline', async () => {
    const file = join(dir, 'token')
    await writeFile(file, `${jwt}\n`)
    expect((await readAssertion({ file }, 'workload assertion')).jwt).toBe(jwt)
    await writeFile(file, 'rotated')
    const error = await refusal(readAssertion({ file }, 'workload assertion'))
    expect(error.code).toBe('ERR_ASSERTION_INVALID')
  })

  it('reads an environment variable and a function', async () => {
    process.env['CALLPROOF_TEST_TOKEN'] = jwt
    try {
      expect((await readAssertion({ env: 'CALLPROOF_TEST_TOKEN' }, 'x')).claims.sub).toBe('w')
    } finally {
      delete process.env['CALLPROOF_TEST_TOKEN']
    }
    expect((await readAssertion(async () => jwt, 'x')).jwt).toBe(jwt)
    const unset = await refusal(readAssertion({ env: 'CALLPROOF_TEST_TOKEN' }, 'x'))
    expect(unset.message).toContain('CALLPROOF_TEST_TOKEN is empty')
  })

  it('says a missing file is missing', async () => {
    const error = await refusal(readAssertion({ file: join(dir, 'none') }, 'ID token'))
    expect(error.code).toBe('ERR_ASSERTION_INVALID')
    expect(error.message).toMatch(/could not be read/)
  })

  it('never echoes something that is not a JWT', async () => {
    const error = await refusal(readAssertion('s3cret-but-not-a-jwt', 'workload assertion'))
    expect(error.message).not.toContain('s3cret')
    const huge = await refusal(readAssertion(`${jwt}${'A'.repeat(20_000)}`, 'x'))
    expect(huge.message).toMatch(/not a JWT/)
  })

  it('compares audiences as identifiers (an origin with or without its slash)', () => {
    expect(audienceIncludes({ aud: 'https://as.example' }, ['https://as.example/'])).toBe(true)
    expect(audienceIncludes({ aud: ['x', 'https://as.example/'] }, ['https://as.example'])).toBe(
      true,
    )
    expect(audienceIncludes({ aud: 'https://as.example.evil' }, ['https://as.example'])).toBe(false)
    expect(audienceIncludes({}, ['https://as.example'])).toBe(false)
  })
})

describe('agent grant options', () => {
  it('refuses two agent grants at once', async () => {
    expect(() =>
      agentGrantOf({
        clientCredentials: { clientId: 'a', clientSecret: 's' },
        workloadIdentity: { clientId: 'a', assertion: jwt },
      }),
    ).toThrow(/one agent grant/)
  })

  it('refuses enterprise authorization without its IdP', async () => {
    expect(() =>
      agentGrantOf({
        enterpriseAuthorization: { clientId: 'a', idToken: jwt } as never,
      }),
    ).toThrow(/idp.issuer/)
  })

  it('names every agent grant when a session has neither a user nor an agent grant', async () => {
    const keyPair = await generateProofKeyPair()
    expect(() => new CallproofSession('https://drive.example/mcp', { keyPair } as never)).toThrow(
      /enterpriseAuthorization or workloadIdentity/,
    )
    const session = new CallproofSession('https://drive.example/mcp', {
      keyPair,
      workloadIdentity: { clientId: 'agent', assertion: jwt },
    })
    expect(session.options.workloadIdentity?.clientId).toBe('agent')
  })
})

describe('JWT-bearer grant', () => {
  it('is not sent to a server whose metadata lists grant types without it', async () => {
    const fake = await startFake({ '/token': () => ({ body: {} }) })
    try {
      const as: oauth.AuthorizationServer = {
        issuer: fake.origin,
        token_endpoint: `${fake.origin}/token`,
        grant_types_supported: ['authorization_code', 'refresh_token'],
      }
      const ctx = oauthContext(
        as,
        { client_id: 'agent' },
        oauth.None(),
        await generateProofKeyPair(),
        { allowLoopbackHttp: true },
      )
      const error = await refusal(
        jwtBearerGrant(ctx, jwt, { resource: 'https://drive.example/mcp' }),
      )
      expect(error.code).toBe('ERR_INVALID_METADATA')
      expect(error.message).toContain(JWT_BEARER_GRANT)
      expect(fake.requests).toHaveLength(0)
    } finally {
      await fake.close()
    }
  })
})
