/**
 * The MCP SDK v2 client with its own DPoP support, end to end (issue 12, items 2 and 3): its
 * OAuth flow against the real development authorization server (pre-registered client, the SDK's
 * DPoP-bound token request) and its RFC 9449 proofs, which carry no `mcp` claim, against a real
 * callproof server. A tool that declares `binding: 'optional'` runs; one that requires the
 * binding is refused with ERR_BINDING_REQUIRED. The SDK does not send `dpop_jkt`, which the
 * development server requires: the app's `redirectToAuthorization` adds the session's thumbprint,
 * as the server's error tells it to.
 */
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import {
  Client,
  DpopSession,
  StreamableHTTPClientTransport,
  registerClient,
  resolveClientMetadata,
} from '@modelcontextprotocol/client'
import type {
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthTokens,
} from '@modelcontextprotocol/client'
import {
  DEV_CLIENT_ID,
  DEV_REDIRECT_URI,
  devInteraction,
  startDevAuthServer,
} from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import { callerOf, createCallproof, createToolRegistry } from '@callproof/server'
import type { AuditEvent } from '@callproof/server'

const silent = { info() {}, warn() {}, error() {} }
let auth: DevAuthServer
let url = ''
const events: AuditEvent[] = []
let close: () => Promise<void>
/** Every WWW-Authenticate the SDK client was answered with. */
const challenges: string[] = []
const recording: typeof fetch = async (input, init) => {
  const response = await fetch(input, init)
  const challenge = response.headers.get('www-authenticate')
  if (challenge !== null) challenges.push(challenge)
  return response
}

beforeAll(async () => {
  // The port first (the authorization server must know the resource), then the app.
  const slot: { app?: Hono } = {}
  const server = serve({
    fetch: (r: Request) => slot.app!.fetch(r),
    port: 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve) =>
    server.listening ? resolve() : server.once('listening', () => resolve()),
  )
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  auth = await startDevAuthServer({
    resources: [{ uri: url, scopes: ['notes:read'] }],
    logger: silent,
  })
  const tools = createToolRegistry({ name: 'sdk-v2', version: '0.0.0' })
  tools.register(
    'echo',
    { inputSchema: { text: z.string() }, policy: { scopes: ['notes:read'], binding: 'optional' } },
    ({ text }, extra) => ({ content: [{ type: 'text', text: `${callerOf(extra).sub}: ${text}` }] }),
  )
  tools.register('delete_note', { policy: { scopes: ['notes:read'] } }, () => ({
    content: [{ type: 'text', text: 'deleted' }],
  }))
  const callproof = createCallproof({
    resource: url,
    issuers: auth.issuer,
    tools,
    audit: { write: (event: AuditEvent) => void events.push(event) },
  })
  const app = new Hono()
  callproof.mount(app)
  slot.app = app
  close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
    await auth.close()
  }
})
afterAll(async () => {
  await close()
})

/** An app's provider for the SDK: memory storage, DPoP on, the dev server's headless sign-in. */
function provider(session: DpopSession) {
  let tokens: StoredOAuthTokens | undefined
  let verifier = ''
  let discovery: OAuthDiscoveryState | undefined
  const state = { authorizationUrl: undefined as URL | undefined }
  const p: OAuthClientProvider & typeof state = {
    ...state,
    get redirectUrl() {
      return DEV_REDIRECT_URI
    },
    get clientMetadata(): OAuthClientMetadata {
      return { redirect_uris: [DEV_REDIRECT_URI], token_endpoint_auth_method: 'none' }
    },
    clientInformation: () => ({ client_id: DEV_CLIENT_ID }),
    tokens: () => tokens,
    saveTokens: (t) => {
      tokens = t
    },
    redirectToAuthorization(authorizationUrl) {
      // What the server asks of DPoP clients (RFC 9449 §10): bind the code to the key.
      authorizationUrl.searchParams.set('dpop_jkt', session.thumbprint)
      p.authorizationUrl = authorizationUrl
    },
    saveCodeVerifier: (v) => {
      verifier = v
    },
    codeVerifier: () => verifier,
    saveDiscoveryState: (d) => {
      discovery = d
    },
    discoveryState: () => discovery,
    dpop: () => session,
  }
  return p
}

async function signedIn(): Promise<Client> {
  const session = await DpopSession.create()
  const p = provider(session)
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: p })
  const probe = new Client({ name: 'sdk-v2-dpop', version: '0.0.0' })
  // The first connect meets the 401, starts the SDK's OAuth flow and stops at the redirect.
  await expect(probe.connect(first)).rejects.toThrow()
  expect(p.authorizationUrl).toBeDefined()
  const callback = await devInteraction({ user: 'alice' }).authorize(p.authorizationUrl!, {
    reason: 'authorize',
  })
  await first.finishAuth(callback.searchParams)
  const client = new Client({ name: 'sdk-v2-dpop', version: '0.0.0' })
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { authProvider: p, fetch: recording }),
  )
  return client
}

describe('the MCP SDK v2 DPoP client, end to end', () => {
  it('signs in at the development server and calls a tool that accepts unbound proofs', async () => {
    const client = await signedIn()
    try {
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
      expect(result.content).toEqual([{ type: 'text', text: 'alice: hi' }])
      const refused = await client.callTool({ name: 'delete_note', arguments: {} }).then(
        () => undefined,
        (error: unknown) => error,
      )
      // The SDK reports a generic 401 (it drops the body); the challenge it was answered with
      // says what is missing, and the audit keeps the distinct code.
      expect(refused).toMatchObject({ code: 'CLIENT_HTTP_AUTHENTICATION' })
      const challenge = challenges.find((c) => c.includes('delete_note'))
      expect(challenge).toMatch(/error="invalid_dpop_proof"/)
      expect(challenge).toMatch(/requires a call-bound proof/)
      expect(events.find((e) => e.tool === 'delete_note')).toMatchObject({
        decision: 'refused',
        reason: 'ERR_BINDING_REQUIRED',
      })
    } finally {
      await client.close()
    }
  })
})

describe("the MCP SDK v2's dynamic client registration", () => {
  it("registers MCP Inspector's metadata (scope, public client, /oauth/callback) as the SDK sends it", async () => {
    const callback = 'http://localhost:6274/oauth/callback'
    // What the SDK's auth() registers: its defaults (application_type from the redirect URIs).
    const clientMetadata = resolveClientMetadata({
      redirectUrl: callback,
      clientMetadata: {
        client_name: 'MCP Inspector',
        redirect_uris: [callback, `${callback}/debug`],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    })
    const metadata = (await (
      await fetch(`${auth.issuer}/.well-known/oauth-authorization-server`)
    ).json()) as Parameters<typeof registerClient>[1]['metadata']
    const registered = await registerClient(auth.issuer, {
      ...(metadata !== undefined && { metadata }),
      clientMetadata,
      scope: 'notes:read',
    })
    expect(registered.client_id).toMatch(/\S/)
    expect(registered.scope).toBe('notes:read')
    expect(registered.redirect_uris).toEqual([callback, `${callback}/debug`])
  })
})
