// Test support: SDK v2's own server (`@modelcontextprotocol/server` 2.x, `createMcpHandler`),
// speaking 2026-07-28 only (`legacy: 'reject'`: an `initialize` is refused), behind a gate made
// of @callproof/core's verifier: the DPoP-bound token of the real dev authorization server, the
// proof, and the proof's `mcp` binding against the very body the SDK then serves. The gate also
// records, for every verified POST, the SEP-2243 headers next to the binding the proof carried,
// so a test can see that the two agree. (The real callproof server seam on SDK v2 is
// packages/server's; this gate is the smallest verifier-in-front-of-SDK-v2 that checks proofs.)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet } from 'jose'
import {
  createMcpHandler,
  getOAuthProtectedResourceMetadataUrl,
  McpServer,
  oauthMetadataResponse,
  requireBearerAuth,
} from '@modelcontextprotocol/server'
import * as z from 'zod'
import {
  CallproofError,
  InsufficientScopeError,
  MemoryReplayStore,
  createVerifier,
  toResponse,
  type McpBinding,
} from '@callproof/core'
import { startDevAuthServer } from '@callproof/dev-auth-server'

export interface SeenPost {
  mcpMethod: string | null
  mcpName: string | null
  protocolVersion: string | null
  binding: McpBinding | undefined
}

export interface V2World {
  issuer: string
  url: string
  seen: SeenPost[]
  close(): Promise<void>
}

const SCOPES = ['notes:read', 'notes:write']

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'notes-v2', version: '1.0.0' })
  server.registerTool(
    'read_note',
    { description: 'Reads a note', inputSchema: z.object({ id: z.string() }) },
    ({ id }) => ({ content: [{ type: 'text', text: `note ${id}` }] }),
  )
  server.registerTool(
    'write_note',
    { description: 'Writes a note (needs notes:write)', inputSchema: z.object({ id: z.string() }) },
    ({ id }) => ({ content: [{ type: 'text', text: `wrote ${id}` }] }),
  )
  return server
}

async function toRequest(req: IncomingMessage, origin: string): Promise<Request> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(name, value)
  }
  const method = req.method ?? 'GET'
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    ...(method !== 'GET' && method !== 'HEAD' && { body: Buffer.concat(chunks) }),
  })
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers))
  res.end(Buffer.from(await response.arrayBuffer()))
}

/** An HTTP server on 127.0.0.1 serving `gate` (set once the origin is known). */
async function listen(): Promise<{
  origin: string
  serve(gate: (request: Request) => Promise<Response>): void
  close(): Promise<void>
}> {
  const http = createServer()
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return {
    origin,
    serve(gate) {
      http.on('request', (req, res) => {
        toRequest(req, origin)
          .then(gate)
          .then((response) => send(res, response))
          .catch(() => {
            if (!res.headersSent) res.writeHead(500)
            res.end()
          })
      })
    },
    close() {
      http.closeAllConnections()
      return new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

/**
 * SDK v2's own protection alone: `requireBearerAuth` and the RFC 9728 metadata of
 * `oauthMetadataResponse`, naming the real dev authorization server. It offers no DPoP. Its
 * token verifier refuses everything (callproof's client must not get as far as sending a token).
 */
export async function startBearerOnlyV2Server(
  issuer: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = await listen()
  const url = new URL(`${server.origin}/mcp`)
  const oauthMetadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()
  const options = { oauthMetadata, resourceServerUrl: url, dangerouslyAllowInsecureIssuerUrl: true }
  const gate = requireBearerAuth({
    verifier: {
      verifyAccessToken: () => Promise.reject(new Error('no token is valid here')),
    },
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(url),
  })
  const handler = createMcpHandler(mcpServer)
  server.serve(async (request) => {
    const metadata = oauthMetadataResponse(request, options)
    if (metadata !== undefined) return metadata
    const auth = await gate(request)
    // Not `instanceof Response`: @hono/node-server (the drive, in the same process) replaces the
    // global Response class, so the SDK's refusal may be an instance of the other one.
    if ('status' in auth) return auth
    return handler.fetch(request, { authInfo: auth })
  })
  return {
    url: url.href,
    async close() {
      await handler.close()
      await server.close()
    },
  }
}

export async function startV2World(): Promise<V2World> {
  const server = await listen()
  const origin = server.origin
  const resource = `${origin}/mcp`
  const auth = await startDevAuthServer({
    resources: [{ uri: resource, scopes: SCOPES }],
    logger: { warn: () => {}, info: () => {} },
  })
  const discovery = (await (
    await fetch(`${auth.issuer}/.well-known/openid-configuration`)
  ).json()) as { jwks_uri: string }
  const verifier = createVerifier({
    resource,
    issuers: [auth.issuer],
    keys: createRemoteJWKSet(new URL(discovery.jwks_uri)),
    replay: new MemoryReplayStore(),
  })
  const metadataPath = '/.well-known/oauth-protected-resource/mcp'
  const challenge = { resourceMetadata: `${origin}${metadataPath}`, algs: ['ES256', 'EdDSA'] }
  const handler = createMcpHandler(mcpServer, { legacy: 'reject' })
  const seen: SeenPost[] = []

  async function gate(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (request.method === 'GET' && url.pathname === metadataPath) {
      return Response.json({
        resource,
        authorization_servers: [auth.issuer],
        scopes_supported: SCOPES,
        dpop_bound_access_tokens_required: true,
        dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
      })
    }
    if (url.pathname !== '/mcp') return new Response(null, { status: 404 })
    const body = request.method === 'POST' ? await request.text() : ''
    let message: unknown
    try {
      message = body === '' ? undefined : JSON.parse(body)
    } catch {
      return Response.json({ error: 'invalid_request' }, { status: 400 })
    }
    try {
      const call = await verifier.verify({
        method: request.method,
        url: request.url,
        headers: request.headers,
        message,
      })
      seen.push({
        mcpMethod: request.headers.get('mcp-method'),
        mcpName: request.headers.get('mcp-name'),
        protocolVersion: request.headers.get('mcp-protocol-version'),
        binding: call.binding,
      })
      const binding = call.binding
      if (
        binding !== undefined &&
        'method' in binding &&
        binding.name === 'write_note' &&
        !call.caller.scopes.includes('notes:write')
      ) {
        throw new InsufficientScopeError(['notes:read', 'notes:write'])
      }
      return handler.fetch(
        new Request(request.url, { method: 'POST', headers: request.headers, body }),
        {
          parsedBody: message,
        },
      )
    } catch (error) {
      if (error instanceof CallproofError) return toResponse(error, challenge)
      throw error
    }
  }

  server.serve(gate)

  return {
    issuer: auth.issuer,
    url: resource,
    seen,
    async close() {
      await handler.close()
      await server.close()
      await auth.close()
    },
  }
}
