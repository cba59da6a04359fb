/**
 * `@callproof/client` against a standard MCP server (issue 12, item 5): the MCP SDK v1's own
 * authorization server (`mcpAuthRouter` over the SDK's in-memory demo provider, which issues
 * Bearer tokens and approves every authorization at once) and a resource server with the SDK's
 * `requireBearerAuth` and `mcpAuthMetadataRouter` metadata, which offers no DPoP. By default the
 * client says so before it registers or asks anyone to sign in; with `requireBoundTokens: false`
 * it signs in and calls tools with the Bearer token, as before.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import {
  mcpAuthMetadataRouter,
  mcpAuthRouter,
} from '@modelcontextprotocol/sdk/server/auth/router.js'
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { OAuthMetadata } from '@modelcontextprotocol/sdk/shared/auth.js'
import { CallproofClientError, connect } from '@callproof/client'
import type { Interaction } from '@callproof/client'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** Listens on 127.0.0.1:0 first, then builds the handler once its origin is known. */
async function listen(build: (origin: string) => Handler) {
  const slot: { handler?: Handler } = {}
  const server = createServer((req, res) => slot.handler!(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  slot.handler = build(origin)
  return {
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

interface Standard {
  url: string
  /** Paths the authorization server was asked for. */
  asRequests: string[]
  toolRuns: number
  close(): Promise<void>
}

async function startStandard(): Promise<Standard> {
  const provider = new DemoInMemoryAuthProvider()
  const asRequests: string[] = []
  const as = await listen((origin) => {
    const app = express()
    app.use((req, _res, next) => {
      asRequests.push(new URL(req.url ?? '/', origin).pathname)
      next()
    })
    app.use(mcpAuthRouter({ provider, issuerUrl: new URL(origin), scopesSupported: ['mcp:tools'] }))
    return app as unknown as Handler
  })
  const oauthMetadata = (await (
    await fetch(`${as.origin}/.well-known/oauth-authorization-server`)
  ).json()) as OAuthMetadata
  const state = { toolRuns: 0 }
  const rs = await listen((origin) => {
    const url = new URL(`${origin}/mcp`)
    const app = express()
    app.use(
      mcpAuthMetadataRouter({
        oauthMetadata,
        resourceServerUrl: url,
        scopesSupported: ['mcp:tools'],
      }),
    )
    app.use(express.json())
    const auth = requireBearerAuth({
      verifier: provider,
      resourceMetadataUrl: `${origin}/.well-known/oauth-protected-resource/mcp`,
    })
    app.post('/mcp', auth, async (req, res) => {
      // The SDK's stateless mode: a server and a transport per request.
      const server = new McpServer({ name: 'standard', version: '0.0.0' })
      server.registerTool('ping', { description: 'answers pong' }, () => {
        state.toolRuns++
        return { content: [{ type: 'text' as const, text: 'pong' }] }
      })
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true })
      await server.connect(transport)
      await transport.handleRequest(req, res, req.body)
    })
    return app as unknown as Handler
  })
  return {
    url: `${rs.origin}/mcp`,
    asRequests,
    get toolRuns() {
      return state.toolRuns
    },
    close: async () => {
      await rs.close()
      await as.close()
    },
  }
}

/** Follows the demo provider's immediate redirect; counts how often it was asked to sign in. */
function signIn(): Interaction & { count: number } {
  const interaction = {
    count: 0,
    redirectUri: () => 'http://127.0.0.1:8765/callback',
    async authorize(url: URL) {
      interaction.count++
      const response = await fetch(url, { redirect: 'manual' })
      const location = response.headers.get('location')
      if (location === null)
        throw new Error(`no redirect from the authorization server (${response.status})`)
      return new URL(location)
    },
  }
  return interaction
}

let standard: Standard
beforeAll(async () => {
  standard = await startStandard()
})
afterAll(async () => {
  await standard.close()
})

describe('@callproof/client against a standard (Bearer) MCP server', () => {
  it('says before registering or signing in that the server offers no DPoP-bound tokens', async () => {
    const interaction = signIn()
    const before = standard.asRequests.length
    const failure = await connect(standard.url, { interaction, development: true }).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(failure).toBeInstanceOf(CallproofClientError)
    expect((failure as CallproofClientError).code).toBe('ERR_DPOP_NOT_OFFERED')
    const message = (failure as Error).message
    expect(message).toContain(standard.url)
    expect(message).toMatch(/does not offer DPoP-bound tokens/)
    expect(message).toMatch(/requireBoundTokens: false/)
    expect(interaction.count).toBe(0)
    // Not even a registration: the authorization server was not asked for anything.
    expect(standard.asRequests.slice(before)).toEqual([])
    expect(standard.toolRuns).toBe(0)
  })

  it('with requireBoundTokens: false, registers, signs in and calls a tool with the Bearer token', async () => {
    const interaction = signIn()
    const client = await connect(standard.url, {
      interaction,
      development: true,
      requireBoundTokens: false,
    })
    try {
      const result = await client.callTool({ name: 'ping', arguments: {} })
      expect(result.content).toEqual([{ type: 'text', text: 'pong' }])
      expect(interaction.count).toBe(1)
      expect(standard.asRequests).toContain('/register')
      expect(standard.asRequests).toContain('/token')
    } finally {
      await client.close()
    }
  })
})
