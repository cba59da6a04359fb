/**
 * The two baselines of `npm run bench`: the drive's tools on a plain MCP SDK server behind Hono,
 * (a) without authentication and (b) behind a bearer JWT check written the way a competent team
 * would write it with jose. Both serve exactly as callproof does — the SDK's stateless mode, a
 * fresh `McpServer` and transport per request, JSON responses — so the only difference left
 * between (b) and callproof is the authentication itself.
 */
import { Hono } from 'hono'
import { createLocalJWKSet, errors, jwtVerify } from 'jose'
import type { JWK } from 'jose'
import { z } from 'zod'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { DrivePathError } from '@callproof/example-drive'
import type { Drives } from '@callproof/example-drive'

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] })
const failure = (value: string): CallToolResult => ({
  content: [{ type: 'text', text: value }],
  isError: true,
})

/** Who is calling, as the baseline knows it: `alice` without authentication, else the token's. */
function subjectOf(extra: { authInfo?: AuthInfo | undefined }): string {
  const sub = extra.authInfo?.extra?.['sub']
  return typeof sub === 'string' ? sub : 'alice'
}

/**
 * A scope check inside the tool, as an SDK server without callproof does it. Without
 * authentication (no `authInfo`) there is nothing to check.
 */
function needs(extra: { authInfo?: AuthInfo | undefined }, scope: string): CallToolResult | null {
  if (extra.authInfo === undefined) return null
  return extra.authInfo.scopes.includes(scope) ? null : failure(`insufficient scope: ${scope}`)
}

function guarded(body: () => CallToolResult): CallToolResult {
  try {
    return body()
  } catch (error) {
    if (error instanceof DrivePathError) return failure(error.message)
    throw error
  }
}

/**
 * One JSON Schema validator shared by every per-request server, as callproof's tool registry
 * shares one (otherwise the SDK builds a new Ajv in every `Server` constructor): the baselines
 * stay the same SDK setup as callproof's.
 */
const validator = new AjvJsonSchemaValidator()

/** The drive's six tools (same names, schemas and bodies as examples/drive) on a plain SDK server. */
export function plainDriveServer(drives: Drives): McpServer {
  const server = new McpServer(
    { name: 'callproof-drive', version: '0.1.0' },
    { capabilities: { tools: {} }, jsonSchemaValidator: validator },
  )
  server.registerTool('whoami', { description: 'Who the server verified you to be.' }, (extra) =>
    text(JSON.stringify({ sub: subjectOf(extra), scopes: extra.authInfo?.scopes ?? [] })),
  )
  server.registerTool('list_files', { description: 'List the files in your drive.' }, (extra) => {
    return needs(extra, 'drive:read') ?? text(JSON.stringify(drives.list(subjectOf(extra))))
  })
  server.registerTool(
    'read_file',
    { description: 'Read a file from your drive.', inputSchema: { path: z.string() } },
    ({ path }, extra) =>
      needs(extra, 'drive:read') ??
      guarded(() => {
        const content = drives.read(subjectOf(extra), path)
        return content === undefined ? failure(`no such file: ${path}`) : text(content)
      }),
  )
  server.registerTool(
    'write_file',
    {
      description: 'Create or replace a file in your drive.',
      inputSchema: { path: z.string(), content: z.string() },
    },
    ({ path, content }, extra) =>
      needs(extra, 'drive:write') ??
      guarded(() => text(`wrote ${path} (${drives.write(subjectOf(extra), path, content)} bytes)`)),
  )
  server.registerTool(
    'delete_file',
    { description: 'Delete a file from your drive.', inputSchema: { path: z.string() } },
    ({ path }, extra) =>
      needs(extra, 'drive:write') ??
      guarded(() =>
        drives.delete(subjectOf(extra), path)
          ? text(`deleted ${path}`)
          : failure(`no such file: ${path}`),
      ),
  )
  server.registerTool(
    'share_file',
    {
      description: 'Share a file with another user.',
      inputSchema: { path: z.string(), with: z.string().min(1).max(256) },
    },
    ({ path, with: withUser }, extra) =>
      needs(extra, 'drive:share') ??
      guarded(() => {
        const entry = drives.share(subjectOf(extra), path, withUser)
        return entry === undefined ? failure(`no such file: ${path}`) : text(JSON.stringify(entry))
      }),
  )
  return server
}

/** Runs one request through a fresh stateless SDK server, the way callproof's middleware does. */
async function runSdk(drives: Drives, request: Request, authInfo?: AuthInfo): Promise<Response> {
  const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true })
  const server = plainDriveServer(drives)
  await server.connect(transport)
  const response = await transport.handleRequest(
    request,
    authInfo !== undefined ? { authInfo } : undefined,
  )
  await server.close()
  return response
}

const methodNotAllowed = () =>
  new Response(
    JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Method not allowed.' },
      id: null,
    }),
    { status: 405, headers: { allow: 'POST', 'content-type': 'application/json' } },
  )

/** Variant (a): the drive's tools on the SDK behind Hono, no authentication at all. */
export function noAuthApp(drives: Drives): Hono {
  const app = new Hono()
  app.post('/mcp', (c) => runSdk(drives, c.req.raw))
  app.all('/mcp', () => methodNotAllowed())
  return app
}

/** Options of {@link bearerApp}. */
export interface BearerOptions {
  /** The issuer's public signing key (served as a local JWKS; jose caches the imported key). */
  issuerJwk: JWK
  issuer: string
  /** This endpoint's resource URI, required in `aud`. */
  resource: string
  /** Origins a browser may call from (DNS-rebinding protection, as the MCP spec asks). */
  allowedOrigins: readonly string[]
}

/**
 * Variant (b): a plain RFC 6750 bearer check with jose in front of the same SDK server — the
 * baseline callproof is compared against. It checks what a careful bearer server checks (signature
 * with an allow-listed asymmetric algorithm, `typ: at+jwt`, issuer, audience, expiry, the Origin
 * header) and leaves scopes to the tools; it does not, and cannot, tell who is presenting the
 * token.
 */
export function bearerApp(drives: Drives, options: BearerOptions): Hono {
  const keys = createLocalJWKSet({ keys: [options.issuerJwk] })
  const allowedOrigins = new Set(options.allowedOrigins)
  const resourceMetadata = `${new URL(options.resource).origin}/.well-known/oauth-protected-resource/mcp`
  const refuse = (error?: string) =>
    new Response(null, {
      status: 401,
      headers: {
        'www-authenticate':
          `Bearer resource_metadata="${resourceMetadata}"` +
          (error !== undefined ? `, error="${error}"` : ''),
      },
    })

  const app = new Hono()
  app.post('/mcp', async (c) => {
    const origin = c.req.header('origin')
    if (origin !== undefined && !allowedOrigins.has(origin)) return c.text('forbidden origin', 403)
    const header = c.req.header('authorization')
    if (header === undefined) return refuse()
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)
    if (match === null) return refuse('invalid_request')
    const token = match[1]!
    let payload
    try {
      ;({ payload } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.resource,
        algorithms: ['ES256', 'EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['exp', 'sub', 'client_id'],
      }))
    } catch (error) {
      if (error instanceof errors.JOSEError) return refuse('invalid_token')
      throw error
    }
    const scope = typeof payload['scope'] === 'string' ? payload['scope'] : ''
    const authInfo: AuthInfo = {
      token,
      clientId: String(payload['client_id']),
      scopes: scope === '' ? [] : scope.split(' '),
      expiresAt: payload.exp!,
      resource: new URL(options.resource),
      extra: { sub: payload.sub },
    }
    return runSdk(drives, c.req.raw, authInfo)
  })
  app.all('/mcp', () => methodNotAllowed())
  return app
}
