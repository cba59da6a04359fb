/**
 * ⚠️  DELIBERATELY INSECURE — DO NOT COPY. ⚠️
 *
 * An MCP drive server built the way the measured servers are built (MCP SDK + Hono, OAuth at the
 * front door), with the three mistakes that make caller identity confusion possible:
 *
 * 1. **Authorization held by the process.** The first access token that verifies is cached in a
 *    variable of the server process; every later request, from anyone, runs with it. The server
 *    cannot tell who is calling, and does not try.
 * 2. **No per-tool checks.** Scopes, login strength and approvals are never looked at: reading a
 *    file and deleting one need the same thing (nothing, once someone has logged in).
 * 3. **Bearer semantics.** Tokens are not bound to a key (DPoP headers are ignored), sessions are
 *    trusted as identity, captured requests can be sent again and their arguments changed.
 * 4. **A process-wide downstream credential.** With a mail API configured, `email_file` sends
 *    through one mail token, obtained once (for whoever called first) and kept in a variable:
 *    every later caller's mail goes out with that first caller's authority. This is the state
 *    real MCP servers keep (a GitHub, mail or calendar token), and it survives even a front door
 *    that verifies every caller (see docs/guides/downstream.md for the per-caller way).
 *
 * It exists so that `callproof demo --insecure` can show the attacks succeeding. It listens on
 * loopback only and refuses any other address.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { Hono } from 'hono'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import * as oauth from 'oauth4webapi'
import type { JWTPayload } from 'jose'
import { z } from 'zod'

/** Files every user's drive starts with (the same seeds as the drive example). */
export const SEED_FILES: Readonly<Record<string, string>> = Object.freeze({
  'README.md': '# My drive\n\nFiles in this drive belong to you alone.\n',
  'notes/todo.txt': 'buy milk\nreview the quarterly report\n',
  'reports/q3.csv': 'month,revenue\njuly,120\naugust,135\nseptember,150\n',
})

/** Options of {@link startInsecureDrive}. */
export interface InsecureDriveOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number
  /** The authorization server whose tokens are accepted (keys from its metadata's `jwks_uri`). */
  readonly issuer: string
  /** Host to listen on: loopback only (`127.0.0.1` or `::1`). */
  readonly hostname?: '127.0.0.1' | '::1'
  /** A mail API for `email_file`, reached with one process-wide token (MISTAKE 4). */
  readonly mail?: {
    /** The mail API's origin; its resource identifier is `<url>/`. */
    readonly url: string
    /** The client id this server exchanges tokens as (private_key_jwt). */
    readonly clientId: string
    readonly clientKey: CryptoKey
  }
}

/** A running baseline server. */
export interface InsecureDrive {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string
  readonly origin: string
  /** The resource URI a client asks the authorization server for. */
  readonly resource: string
  /** Who the process is currently acting for (the cached authorization), if anyone. */
  cachedSubject(): string | undefined
  /** A subject's files as the server holds them (for the demo's before/after check). */
  files(sub: string): ReadonlyMap<string, { content: string; sharedWith: string[] }>
  close(): Promise<void>
}

interface Authorization {
  readonly token: string
  readonly sub: string
  readonly clientId: string
  readonly scope: string
}

/**
 * Starts the deliberately insecure drive on loopback.
 *
 * @example
 * ```ts
 * const drive = await startInsecureDrive({ issuer: 'http://127.0.0.1:4444' })
 * // …alice logs in once, then anyone can call delete_file as alice…
 * await drive.close()
 * ```
 */
export async function startInsecureDrive(options: InsecureDriveOptions): Promise<InsecureDrive> {
  const hostname = options.hostname ?? '127.0.0.1'
  if (hostname !== '127.0.0.1' && hostname !== '::1') {
    throw new Error('the insecure baseline listens on loopback only (127.0.0.1 or ::1)')
  }
  const issuer = options.issuer.replace(/\/$/, '')
  const jwksUri = await discoverJwksUri(issuer)
  const keys = createRemoteJWKSet(new URL(jwksUri))

  // MISTAKE 1: the authorization lives in the process, not with the caller.
  let authorization: Authorization | undefined
  const drives = new Map<string, Map<string, { content: string; sharedWith: string[] }>>()
  const driveOf = (sub: string) => {
    let drive = drives.get(sub)
    if (drive === undefined) {
      drive = new Map(
        Object.entries(SEED_FILES).map(([path, content]) => [path, { content, sharedWith: [] }]),
      )
      drives.set(sub, drive)
    }
    return drive
  }

  const mailer = options.mail === undefined ? undefined : processWideMailer(issuer, options.mail)
  const transports = new Map<string, WebStandardStreamableHTTPServerTransport>()
  const app = new Hono()
  let origin = ''
  const resource = () => `${origin}/mcp`

  app.get('/.well-known/oauth-protected-resource/mcp', (c) =>
    c.json({
      resource: resource(),
      authorization_servers: [issuer],
      scopes_supported: ['drive:read', 'drive:write', 'drive:share'],
      bearer_methods_supported: ['header'],
    }),
  )

  app.all('/mcp', async (c) => {
    const header = c.req.header('authorization')
    if (header !== undefined) {
      // MISTAKE 3: any scheme is read as a bearer token; the DPoP header (if any) is ignored, so a
      // copied token works for whoever holds the copy.
      const token = header.replace(/^\s*(Bearer|DPoP)\s+/i, '').trim()
      try {
        const { payload } = await jwtVerify(token, keys, { issuer })
        // The first successful login is remembered for everyone ("the drive is connected").
        authorization ??= describe(token, payload)
      } catch {
        return c.json({ error: 'invalid_token' }, 401, {
          'WWW-Authenticate': `Bearer error="invalid_token", resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
        })
      }
    }
    if (authorization === undefined) {
      return c.json({ error: 'unauthorized' }, 401, {
        'WWW-Authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
      })
    }

    // MISTAKE 3 again: a session id is treated as proof of who is calling.
    const sessionId = c.req.header('mcp-session-id')
    if (sessionId !== undefined) {
      const transport = transports.get(sessionId)
      if (transport === undefined) return c.json({ error: 'unknown session' }, 404)
      return transport.handleRequest(c.req.raw)
    }
    const body: unknown =
      c.req.method === 'POST' ? await c.req.json().catch(() => undefined) : undefined
    if (!isInitializeRequest(body)) {
      return c.json({ error: 'initialize first' }, 400)
    }
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => void transports.set(id, transport),
      onsessionclosed: (id) => void transports.delete(id),
    })
    const server = createDriveServer(() => authorization, driveOf, mailer)
    await server.connect(transport)
    return transport.handleRequest(c.req.raw, { parsedBody: body })
  })

  const server = serve({ fetch: app.fetch, port: options.port ?? 0, hostname })
  // A port that is taken rejects here (EADDRINUSE) instead of crashing the process on an 'error'
  // event nobody listens to.
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const address = server.address() as AddressInfo
  origin = `http://${hostname === '::1' ? '[::1]' : hostname}:${address.port}`

  return {
    url: resource(),
    origin,
    resource: resource(),
    cachedSubject: () => authorization?.sub,
    files: (sub) => driveOf(sub),
    close: async () => {
      await Promise.all([...transports.values()].map((t) => t.close()))
      transports.clear()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        // Keep-alive connections would hold close() open until they time out.
        if ('closeAllConnections' in server) server.closeAllConnections()
      })
    },
  }
}

function describe(token: string, payload: JWTPayload): Authorization {
  return {
    token,
    sub: String(payload.sub),
    clientId: String(payload.client_id ?? payload.azp ?? ''),
    scope: String(payload.scope ?? ''),
  }
}

/**
 * The tools, exactly as naive servers write them: each one acts for "the" authorization the
 * process holds. MISTAKE 2: no tool checks scope, login strength or approval.
 */
function createDriveServer(
  current: () => Authorization | undefined,
  driveOf: (sub: string) => Map<string, { content: string; sharedWith: string[] }>,
  mailer: Mailer | undefined,
): McpServer {
  const server = new McpServer({ name: 'insecure-drive', version: '0.1.0' })
  const drive = () => {
    const auth = current()
    if (auth === undefined) throw new Error('not connected')
    return driveOf(auth.sub)
  }
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] })
  const failure = (t: string) => ({ content: [{ type: 'text' as const, text: t }], isError: true })

  server.registerTool('whoami', { description: 'Who the server acts for' }, () => {
    const auth = current()
    return text(
      JSON.stringify({ sub: auth?.sub, clientId: auth?.clientId, scopes: auth?.scope.split(' ') }),
    )
  })
  server.registerTool('list_files', { description: 'List the files in the drive' }, () =>
    text(
      JSON.stringify(
        [...drive()].map(([path, f]) => ({
          path,
          size: f.content.length,
          sharedWith: f.sharedWith,
        })),
      ),
    ),
  )
  server.registerTool(
    'read_file',
    { description: 'Read a file', inputSchema: { path: z.string() } },
    ({ path }) => {
      const file = drive().get(path)
      return file === undefined ? failure(`no such file: ${path}`) : text(file.content)
    },
  )
  server.registerTool(
    'write_file',
    { description: 'Write a file', inputSchema: { path: z.string(), content: z.string() } },
    ({ path, content }) => {
      const files = drive()
      files.set(path, { content, sharedWith: files.get(path)?.sharedWith ?? [] })
      return text(`wrote ${path} (${content.length} bytes)`)
    },
  )
  server.registerTool(
    'delete_file',
    { description: 'Delete a file', inputSchema: { path: z.string() } },
    ({ path }) =>
      drive().delete(path) ? text(`deleted ${path}`) : failure(`no such file: ${path}`),
  )
  server.registerTool(
    'share_file',
    {
      description: 'Share a file with another user',
      inputSchema: { path: z.string(), with: z.string() },
    },
    ({ path, with: user }) => {
      const file = drive().get(path)
      if (file === undefined) return failure(`no such file: ${path}`)
      if (!file.sharedWith.includes(user)) file.sharedWith.push(user)
      return text(`shared ${path} with ${user}`)
    },
  )
  if (mailer !== undefined) {
    server.registerTool(
      'email_file',
      {
        description: 'Email a file from the drive',
        inputSchema: { path: z.string(), to: z.string() },
      },
      async ({ path, to }) => {
        const auth = current()
        if (auth === undefined) throw new Error('not connected')
        const file = drive().get(path)
        if (file === undefined) return failure(`no such file: ${path}`)
        const sent = await mailer(auth.token, { to, subject: path, text: file.content })
        return sent.ok ? text(JSON.stringify(sent.answer)) : failure(JSON.stringify(sent.answer))
      },
    )
  }
  return server
}

type Mailer = (
  firstToken: string,
  message: { to: string; subject: string; text: string },
) => Promise<{ ok: boolean; answer: unknown }>

/**
 * MISTAKE 4: the mail token is obtained once, with whichever caller's token comes first, and
 * kept by the process. (The exchange itself is the proper RFC 8693 one; the mistake is only
 * where its result is kept.)
 */
function processWideMailer(
  issuer: string,
  mail: NonNullable<InsecureDriveOptions['mail']>,
): Mailer {
  const origin = new URL(mail.url).origin
  const client: oauth.Client = { client_id: mail.clientId }
  const insecure = { [oauth.allowInsecureRequests]: true }
  let connection: Promise<{ token: string; dpop: oauth.DPoPHandle }> | undefined
  const connect = async (firstToken: string) => {
    const url = new URL(issuer)
    const as = await oauth.processDiscoveryResponse(
      url,
      await oauth.discoveryRequest(url, { algorithm: 'oidc', ...insecure }),
    )
    const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
    const response = await oauth.genericTokenEndpointRequest(
      as,
      client,
      oauth.PrivateKeyJwt(mail.clientKey),
      'urn:ietf:params:oauth:grant-type:token-exchange',
      {
        subject_token: firstToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: `${origin}/`,
        scope: 'mail:send',
      },
      { DPoP: dpop, ...insecure },
    )
    const result = await oauth.processGenericTokenEndpointResponse(as, client, response)
    return { token: result.access_token, dpop }
  }
  return async (firstToken, message) => {
    // "The mail account is connected": the first caller's mail token, for everyone after.
    connection ??= connect(firstToken)
    const { token, dpop } = await connection
    const response = await oauth.protectedResourceRequest(
      token,
      'POST',
      new URL('/messages', origin),
      new Headers({ 'content-type': 'application/json' }),
      JSON.stringify(message),
      { DPoP: dpop, ...insecure },
    )
    return { ok: response.status === 201, answer: await response.json().catch(() => ({})) }
  }
}

async function discoverJwksUri(issuer: string): Promise<string> {
  for (const url of [
    `${issuer}/.well-known/openid-configuration`,
    `${issuer}/.well-known/oauth-authorization-server`,
  ]) {
    const response = await fetch(url).catch(() => undefined)
    if (response?.ok !== true) continue
    const metadata = (await response.json()) as { jwks_uri?: unknown }
    if (typeof metadata.jwks_uri === 'string') return metadata.jwks_uri
  }
  throw new Error(`no authorization server metadata with a jwks_uri at ${issuer}`)
}
