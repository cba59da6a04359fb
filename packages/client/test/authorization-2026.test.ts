// The 2026-07-28 authorization changes on the client: RFC 9207 `iss` in the authorization response
// (SEP-2468, the mix-up defence), `application_type` in dynamic registration (SEP-837), and client
// ID metadata documents preferred over dynamic registration. Against the real development
// authorization server (oidc-provider, which advertises authorization_response_iss_parameter_supported)
// and the real drive; the mix-up itself is a callback the honest server never sends, so the test's
// interaction rewrites the real callback the way an attacker's authorization server would answer.
import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { applicationTypeOf } from '../src/registration.js'
import {
  CallproofClientError,
  MemoryTokenStore,
  connect,
  resolveClient,
  type Interaction,
} from '../src/index.js'
import { startFake, type Fake } from './support/fake.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

const fakes: Fake[] = []
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()))
})

/** A real sign-in at the dev authorization server whose callback `rewrite` then changes. */
function rewritten(rewrite: (callback: URL) => void): Interaction {
  const real = devInteraction({ user: 'alice' })
  return {
    redirectUri: () => real.redirectUri(),
    async authorize(url, context) {
      const callback = await real.authorize(url, context)
      rewrite(callback)
      return callback
    },
  }
}

/** The underlying fetch, recording where the client's OAuth requests went (init passed on). */
function recordingFetch(): { fetch: typeof fetch; urls: string[]; bodies: string[] } {
  const urls: string[] = []
  const bodies: string[] = []
  return {
    urls,
    bodies,
    fetch: (input, init) => {
      urls.push(input instanceof Request ? input.url : String(input))
      if (typeof init?.body === 'string') bodies.push(init.body)
      return fetch(input, init)
    },
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

describe('RFC 9207 iss in the authorization response (SEP-2468)', () => {
  it('accepts the real callback, which names the issuer', async () => {
    const client = await connect(world.drive.url, {
      interaction: rewritten((cb) => expect(cb.searchParams.get('iss')).toBe(world.issuer)),
      development: true,
      scopes: ['drive:read'],
    })
    await client.close()
  })

  it('refuses a mix-up: a callback naming another issuer, before the code is redeemed and without showing its text', async () => {
    const recorded = recordingFetch()
    const error = await refusal(
      connect(world.drive.url, {
        interaction: rewritten((cb) => {
          // What an attacker's authorization server steers back: its own issuer, and words of
          // its choosing.
          cb.searchParams.set('iss', 'http://127.0.0.1:9/attacker')
          cb.searchParams.set('error_description', 'Your account is locked, call evil.example')
        }),
        development: true,
        scopes: ['drive:read'],
        fetch: recorded.fetch,
      }),
    )
    expect(error.code).toBe('ERR_ISSUER_MISMATCH')
    expect(error.message).toContain(world.issuer)
    expect(error.message).not.toContain('evil.example')
    expect(error.message).not.toContain('attacker')
    // The code was never sent to the token endpoint.
    expect(recorded.urls.some((u) => new URL(u).pathname.endsWith('/token'))).toBe(false)
  })

  it('refuses a callback without iss from an authorization server that promises one', async () => {
    const error = await refusal(
      connect(world.drive.url, {
        interaction: rewritten((cb) => cb.searchParams.delete('iss')),
        development: true,
        scopes: ['drive:read'],
      }),
    )
    expect(error.code).toBe('ERR_ISSUER_MISMATCH')
    expect(error.message).toContain('authorization_response_iss_parameter_supported')
  })

  it('refuses a callback naming two issuers', async () => {
    const error = await refusal(
      connect(world.drive.url, {
        interaction: rewritten((cb) => cb.searchParams.append('iss', world.issuer)),
        development: true,
        scopes: ['drive:read'],
      }),
    )
    expect(error.code).toBe('ERR_ISSUER_MISMATCH')
  })
})

describe('registration (SEP-837, client ID metadata documents)', () => {
  it('registers dynamically as a native application for a loopback redirect', async () => {
    const recorded = recordingFetch()
    const store = new MemoryTokenStore()
    const client = await connect(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      tokenStore: store,
      fetch: recorded.fetch,
    })
    await client.close()
    const registration = recorded.bodies
      .map((b) => {
        try {
          return JSON.parse(b) as Record<string, unknown>
        } catch {
          return undefined
        }
      })
      .find((b) => b?.redirect_uris !== undefined)
    expect(registration?.application_type).toBe('native')
    // The real authorization server registered it (and the client is remembered per issuer).
    expect((await store.getClient(world.issuer))?.clientId).toEqual(expect.any(String))
  })

  it('names native for loopback and private-use redirects, web for an https host', () => {
    expect(applicationTypeOf('http://127.0.0.1:5173/callback')).toBe('native')
    expect(applicationTypeOf('http://[::1]:5173/callback')).toBe('native')
    expect(applicationTypeOf('http://localhost/callback')).toBe('native')
    expect(applicationTypeOf('com.example.app:/oauth/callback')).toBe('native')
    expect(applicationTypeOf('https://app.example/callback')).toBe('web')
  })

  it('uses the client ID metadata document, not dynamic registration, where the server supports both', async () => {
    const as = await startFake({
      'POST /register': () => ({ status: 201, body: { client_id: 'dynamic' } }),
    })
    fakes.push(as)
    const client = await resolveClient(
      {
        issuer: as.origin,
        registration_endpoint: `${as.origin}/register`,
        client_id_metadata_document_supported: true,
      },
      'http://127.0.0.1:5173/callback',
      { clientMetadataUrl: 'https://app.example/client.json' },
      new MemoryTokenStore(),
      {},
    )
    expect(client.clientId).toBe('https://app.example/client.json')
    expect(as.requests).toHaveLength(0)
  })
})
