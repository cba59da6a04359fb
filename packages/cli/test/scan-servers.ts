/**
 * Small MCP servers written with the plain MCP SDK v1 and express, no callproof: each one built
 * the way real servers are, right or wrong, for `callproof scan` to measure. Tokens are opaque
 * strings checked by a verifier over a table, as an introspecting server would.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import express from 'express'
import type { Request, RequestHandler, Response } from 'express'

/**
 * How the server authenticates:
 * - `none`: not at all.
 * - `sdk-bearer`: the SDK's `requireBearerAuth` on every request, its stateful transport as the
 *   SDK's examples write it (sessions are not tied to a caller).
 * - `cache-first`: the first valid token is kept by the process; later requests need none.
 * - `session-identity`: a token opens a session; the session id alone is enough afterwards.
 * - `bound-bearer`: a valid token on every request, and a session belongs to its subject.
 * - `ignores-sessions`: a valid token on every request and a stateless transport, which hands out
 *   an `Mcp-Session-Id` anyway and then ignores any it is sent.
 */
export type SdkServerKind =
  'none' | 'sdk-bearer' | 'cache-first' | 'session-identity' | 'bound-bearer' | 'ignores-sessions'

/** A running server. */
export interface SdkServer {
  readonly url: string
  /** A valid access token of each user. */
  readonly tokens: { readonly alice: string; readonly bob: string }
  /** The tool name of every `tools/call` request that reached the server, run or refused. */
  readonly callsSeen: string[]
  /** The tools that ran. */
  readonly callsRun: string[]
  close(): Promise<void>
}

/** Starts a server of `kind` on 127.0.0.1 (a free port). */
export async function startSdkServer(
  kind: SdkServerKind,
  options: { readonly extraTools?: readonly string[] } = {},
): Promise<SdkServer> {
  const tokens = {
    alice: `alice-${randomBytes(16).toString('hex')}`,
    bob: `bob-${randomBytes(16).toString('hex')}`,
  }
  const subjects = new Map([
    [tokens.alice, 'alice'],
    [tokens.bob, 'bob'],
  ])
  const verifier = {
    verifyAccessToken: async (token: string): Promise<AuthInfo> => {
      const sub = subjects.get(token)
      if (sub === undefined) {
        const { InvalidTokenError } =
          await import('@modelcontextprotocol/sdk/server/auth/errors.js')
        throw new InvalidTokenError('unknown token')
      }
      return {
        token,
        clientId: 'client',
        scopes: [],
        expiresAt: Date.now() / 1000 + 3600,
        extra: { sub },
      }
    },
  }
  const callsSeen: string[] = []
  const callsRun: string[] = []
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const owners = new Map<string, string>()

  const challenge = (res: Response) =>
    res
      .set('WWW-Authenticate', 'Bearer error="invalid_token"')
      .status(401)
      .json({ error: 'invalid_token' })
  const bearer = async (req: Request): Promise<AuthInfo | undefined> => {
    const [scheme, token] = (req.headers.authorization ?? '').split(' ')
    if (scheme?.toLowerCase() !== 'bearer' || token === undefined) return undefined
    return verifier.verifyAccessToken(token).catch(() => undefined)
  }
  let cached: AuthInfo | undefined

  const auth: Record<SdkServerKind, RequestHandler> = {
    none: (_req, _res, next) => next(),
    'sdk-bearer': requireBearerAuth({ verifier }),
    'cache-first': async (req, res, next) => {
      if (req.headers.authorization !== undefined) {
        const info = await bearer(req)
        if (info === undefined) return challenge(res)
        cached ??= info
      }
      if (cached === undefined) return challenge(res)
      req.auth = cached
      next()
    },
    'session-identity': async (req, res, next) => {
      const id = req.headers['mcp-session-id']
      if (typeof id === 'string' && transports.has(id)) return next()
      const info = await bearer(req)
      if (info === undefined) return challenge(res)
      req.auth = info
      next()
    },
    'ignores-sessions': async (req, res, next) => {
      const info = await bearer(req)
      if (info === undefined) return challenge(res)
      req.auth = info
      next()
    },
    'bound-bearer': async (req, res, next) => {
      const info = await bearer(req)
      if (info === undefined) return challenge(res)
      const id = req.headers['mcp-session-id']
      if (typeof id === 'string' && owners.get(id) !== info.extra?.sub) {
        return res.status(404).json({ error: 'no such session' })
      }
      req.auth = info
      next()
    },
  }

  const mcp: RequestHandler = async (req, res) => {
    if (kind === 'ignores-sessions') {
      // No sessionIdGenerator: the SDK's stateless mode.
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true })
      const server = new McpServer({ name: 'sdk-ignores-sessions', version: '0.0.0' })
      server.registerTool('ping', { description: 'the ping tool' }, () => {
        callsRun.push('ping')
        return { content: [{ type: 'text' as const, text: 'ping ran' }] }
      })
      await server.connect(transport)
      if (isInitializeRequest(req.body)) res.setHeader('mcp-session-id', randomUUID())
      return transport.handleRequest(req, res, req.body)
    }
    const id = req.headers['mcp-session-id']
    if (typeof id === 'string') {
      const transport = transports.get(id)
      if (transport === undefined) return res.status(404).json({ error: 'no such session' })
      return transport.handleRequest(req, res, req.body)
    }
    if (!isInitializeRequest(req.body)) return res.status(400).json({ error: 'initialize first' })
    const sub = String(req.auth?.extra?.sub ?? '')
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (sessionId) => {
        transports.set(sessionId, transport)
        owners.set(sessionId, sub)
      },
    })
    const server = new McpServer({ name: `sdk-${kind}`, version: '0.0.0' })
    const tool = (name: string) =>
      server.registerTool(name, { description: `the ${name} tool` }, () => {
        callsRun.push(name)
        return { content: [{ type: 'text' as const, text: `${name} ran` }] }
      })
    tool('ping')
    tool('erase_everything')
    for (const name of options.extraTools ?? []) tool(name)
    await server.connect(transport)
    return transport.handleRequest(req, res, req.body)
  }

  const app = express()
  app.use(express.json({ limit: '1mb' }))
  app.use((req, _res, next) => {
    const body = req.body as { method?: unknown; params?: { name?: unknown } } | undefined
    if (body?.method === 'tools/call') callsSeen.push(String(body.params?.name))
    next()
  })
  app.post('/mcp', auth[kind], mcp)
  const http = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve)
    http.once('error', reject)
  })
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    tokens,
    callsSeen,
    callsRun,
    close: async () => {
      await Promise.all([...transports.values()].map((t) => t.close()))
      await new Promise<void>((resolve) => {
        http.close(() => resolve())
        http.closeAllConnections()
      })
    },
  }
}

/** A running {@link startPlainDpopServer}. */
export interface PlainDpopServer {
  readonly url: string
  /** Trust the authorization server at `issuer` (started after the server, for its resource URI). */
  trust(issuer: string): Promise<void>
  /** The tool name of every `tools/call` that ran. */
  readonly callsRun: string[]
  close(): Promise<void>
}

/**
 * A correct RFC 9449 DPoP server on the plain SDK and jose, no callproof: JWT access tokens from
 * the authorization server (issuer, audience, `cnf.jkt`), a proof on every request (`typ`,
 * signature by its embedded key, `htm`, `htu`, `iat` window, `ath`, the key's thumbprint equal to
 * `cnf.jkt`), each proof's `jti` accepted once, sessions tied to their subject. What RFC 9449
 * does not cover is the request body: nothing ties a proof to the call it came with.
 */
export async function startPlainDpopServer(): Promise<PlainDpopServer> {
  const { EmbeddedJWK, base64url, calculateJwkThumbprint, createRemoteJWKSet, jwtVerify } =
    await import('jose')
  const { createHash } = await import('node:crypto')
  let issuer = ''
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined
  const seen = new Set<string>()
  const callsRun: string[] = []
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const owners = new Map<string, string>()
  let url = ''

  const refuse = (res: Response, error: string, why: string) =>
    res
      .set(
        'WWW-Authenticate',
        `DPoP error="${error}", algs="ES256", resource_metadata="${new URL(url).origin}/.well-known/oauth-protected-resource/mcp"`,
      )
      .status(401)
      .json({ error, error_description: why })

  const dpop: RequestHandler = async (req, res, next) => {
    const [scheme, token] = (req.headers.authorization ?? '').split(' ')
    const proof = req.headers.dpop
    if (scheme?.toLowerCase() !== 'dpop' || token === undefined || keys === undefined) {
      return refuse(res, 'invalid_token', 'a DPoP token is required')
    }
    if (typeof proof !== 'string') return refuse(res, 'invalid_dpop_proof', 'no proof')
    let claims: { sub?: string; cnf?: { jkt?: string } }
    try {
      claims = (await jwtVerify(token, keys, { issuer, audience: url })).payload
    } catch {
      return refuse(res, 'invalid_token', 'the token does not verify')
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256'],
      })
      const ath = base64url.encode(createHash('sha256').update(token).digest())
      const jkt = await calculateJwkThumbprint(protectedHeader.jwk ?? {})
      const age = Date.now() / 1000 - Number(payload.iat)
      const jti = String(payload.jti)
      if (payload.htm !== 'POST' || payload.htu !== url || payload.ath !== ath) throw new Error()
      if (!(age < 60 && age > -5) || jkt !== claims.cnf?.jkt || seen.has(`${jkt}:${jti}`)) {
        throw new Error()
      }
      seen.add(`${jkt}:${jti}`)
    } catch {
      return refuse(res, 'invalid_dpop_proof', 'the proof does not verify')
    }
    const id = req.headers['mcp-session-id']
    if (typeof id === 'string' && owners.get(id) !== claims.sub) {
      return res.status(404).json({ error: 'no such session' })
    }
    req.auth = { token, clientId: 'client', scopes: [], extra: { sub: claims.sub } }
    next()
  }

  const mcp: RequestHandler = async (req, res) => {
    const id = req.headers['mcp-session-id']
    if (typeof id === 'string') {
      const transport = transports.get(id)
      if (transport === undefined) return res.status(404).json({ error: 'no such session' })
      return transport.handleRequest(req, res, req.body)
    }
    if (!isInitializeRequest(req.body)) return res.status(400).json({ error: 'initialize first' })
    const sub = String(req.auth?.extra?.sub ?? '')
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (sessionId) => {
        transports.set(sessionId, transport)
        owners.set(sessionId, sub)
      },
    })
    const server = new McpServer({ name: 'plain-dpop', version: '0.0.0' })
    server.registerTool('ping', { description: 'answers pong' }, () => {
      callsRun.push('ping')
      return { content: [{ type: 'text' as const, text: 'pong' }] }
    })
    await server.connect(transport)
    return transport.handleRequest(req, res, req.body)
  }

  const app = express()
  app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) =>
    res.json({
      resource: url,
      authorization_servers: [issuer],
      scopes_supported: ['notes:read'],
      dpop_bound_access_tokens_required: true,
      dpop_signing_alg_values_supported: ['ES256'],
    }),
  )
  app.use(express.json({ limit: '1mb' }))
  app.post('/mcp', dpop, mcp)
  const http = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve)
    http.once('error', reject)
  })
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  return {
    url,
    callsRun,
    trust: async (at) => {
      issuer = at
      const metadata = (await (
        await fetch(`${at}/.well-known/oauth-authorization-server`)
      ).json()) as { jwks_uri: string }
      keys = createRemoteJWKSet(new URL(metadata.jwks_uri))
    },
    close: async () => {
      await Promise.all([...transports.values()].map((t) => t.close()))
      await new Promise<void>((resolve) => {
        http.close(() => resolve())
        http.closeAllConnections()
      })
    },
  }
}
