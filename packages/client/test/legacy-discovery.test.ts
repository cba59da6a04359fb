// The 2025-03-26 revision's discovery (`legacyDiscovery: true`) against servers on 127.0.0.1 that
// play servers of that revision (no RFC 9728 metadata), which no server in this repository is;
// the conformance suite's 2025-03-26 scenarios run the whole flow. What is checked here is when
// the weaker discovery is used, and when it is refused.
import { afterEach, describe, expect, it } from 'vitest'
import { discoverResource } from '../src/legacy-discovery.js'
import { CallproofClientError, CallproofSession, generateProofKeyPair } from '../src/index.js'
import { asMetadata, startFake, type Fake, type Route } from './support/fake.js'

const urlPolicy = { allowLoopbackHttp: true }
let fake: Fake | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

async function serve(routes: Record<string, Route>): Promise<URL> {
  fake = await startFake(routes)
  return new URL(`${fake.origin}/mcp`)
}

async function refusal(promise: Promise<unknown>): Promise<CallproofClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CallproofClientError)
  return error as CallproofClientError
}

const noDpop = asMetadata({ dpop_signing_alg_values_supported: undefined })

describe('legacy (2025-03-26) discovery', () => {
  it('is refused without the opt-in, and the error names it', async () => {
    const server = await serve({ '/.well-known/oauth-authorization-server': asMetadata() })
    const error = await refusal(discoverResource(server, undefined, { urlPolicy }, false))
    expect(error.code).toBe('ERR_INVALID_METADATA')
    expect(error.message).toContain('legacyDiscovery: true')
    expect(fake!.requests.map((r) => r.path)).not.toContain(
      '/.well-known/oauth-authorization-server',
    )
  })

  it("uses the metadata at the server's origin, asked with the revision's protocol version", async () => {
    const server = await serve({ '/.well-known/oauth-authorization-server': asMetadata() })
    const found = await discoverResource(server, undefined, { urlPolicy }, true)
    expect(found.legacyAuthorizationServer?.issuer).toBe(fake!.origin)
    expect(found.legacyAuthorizationServer?.token_endpoint).toBe(`${fake!.origin}/token`)
    expect(found.resource.resource).toBe(server.href)
    const asked = fake!.requests.find((r) => r.path === '/.well-known/oauth-authorization-server')
    expect(asked?.headers['mcp-protocol-version']).toBe('2025-03-26')
  })

  it('falls back to the default endpoints only when there is no metadata (404)', async () => {
    const server = await serve({})
    const { legacyAuthorizationServer: as } = await discoverResource(
      server,
      undefined,
      { urlPolicy },
      true,
    )
    expect(as?.authorization_endpoint).toBe(`${fake!.origin}/authorize`)
    expect(as?.token_endpoint).toBe(`${fake!.origin}/token`)
    expect(as?.registration_endpoint).toBe(`${fake!.origin}/register`)
  })

  it('does not guess endpoints when the metadata request fails otherwise', async () => {
    const server = await serve({
      '/.well-known/oauth-authorization-server': () => ({ status: 500 }),
    })
    const error = await refusal(discoverResource(server, undefined, { urlPolicy }, true))
    expect(error.code).toBe('ERR_INVALID_METADATA')
  })

  it('refuses metadata at the origin that names another issuer', async () => {
    const server = await serve({
      '/.well-known/oauth-authorization-server': asMetadata({ issuer: 'http://127.0.0.1:1' }),
    })
    const error = await refusal(discoverResource(server, undefined, { urlPolicy }, true))
    expect(error.code).toBe('ERR_ISSUER_MISMATCH')
  })

  it('never downgrades a server whose challenge names its RFC 9728 document', async () => {
    const server = await serve({ '/.well-known/oauth-authorization-server': asMetadata() })
    const challenge = `${fake!.origin}/.well-known/oauth-protected-resource/mcp`
    const error = await refusal(discoverResource(server, challenge, { urlPolicy }, true))
    expect(error.code).toBe('ERR_INVALID_METADATA')
    expect(error.message).not.toContain('legacyDiscovery')
  })

  it('never downgrades when the metadata request fails with anything but 404', async () => {
    const server = await serve({
      '/.well-known/oauth-protected-resource/mcp': () => ({ status: 503 }),
      '/.well-known/oauth-authorization-server': asMetadata(),
    })
    const error = await refusal(discoverResource(server, undefined, { urlPolicy }, true))
    expect(error.code).toBe('ERR_INVALID_METADATA')
  })

  it('uses the RFC 9728 document when the server has one, opt-in or not', async () => {
    const server = await serve({
      '/.well-known/oauth-protected-resource/mcp': (_req, origin) => ({
        body: { resource: `${origin}/mcp`, authorization_servers: [`${origin}/as`] },
      }),
    })
    const found = await discoverResource(server, undefined, { urlPolicy }, true)
    expect(found.legacyAuthorizationServer).toBeUndefined()
    expect(found.resource.metadata.authorization_servers).toEqual([`${fake!.origin}/as`])
  })

  it('still refuses, before registering, a legacy server that offers no DPoP', async () => {
    const server = await serve({ '/.well-known/oauth-authorization-server': noDpop })
    const session = new CallproofSession(server, {
      keyPair: await generateProofKeyPair(),
      development: true,
      legacyDiscovery: true,
      clientCredentials: { clientId: 'agent', clientSecret: 's' },
    })
    const error = await refusal(session.discover())
    expect(error.code).toBe('ERR_DPOP_NOT_OFFERED')
    await session.close()
  })

  it('goes on with a legacy server whose authorization server offers DPoP', async () => {
    const server = await serve({ '/.well-known/oauth-authorization-server': asMetadata() })
    const session = new CallproofSession(server, {
      keyPair: await generateProofKeyPair(),
      development: true,
      legacyDiscovery: true,
      clientCredentials: { clientId: 'agent', clientSecret: 's' },
    })
    const ctx = await session.discover()
    expect(ctx.as.issuer).toBe(fake!.origin)
    // No document to look at again: the authorization server stays.
    expect(await session.rediscover()).toBe(false)
    await session.close()
  })
})
