import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import { createInteractionHandler } from './interactions.js'
import { pageHeaders, pageHtml } from './pages/layout.js'
import { errorPage, loggedOutPage, logoutPage } from './pages/pages.js'
import { createProvider } from './provider.js'
import { validateExchangeRules } from './token-exchange.js'
import { validateJwtBearerTrust } from './jwt-bearer.js'
import type {
  ClientMetadata,
  DevLogger,
  DevResource,
  JwtBearerTrust,
  TokenExchangeRule,
} from './types.js'
import { DEV_MFA_CODE, DEV_USERS } from './users.js'

export type { ClientMetadata, DevResource, DevLogger, JwtBearerTrust, TokenExchangeRule }

/** The pre-registered public client for the CLI and demos. */
export const DEV_CLIENT_ID = 'callproof-dev-client'

/**
 * The redirect URI of {@link DEV_CLIENT_ID} and the default of `devInteraction`. Nothing listens
 * on it: the headless driver stops at the redirect and reads the code from the URL. As a native
 * client's loopback URI, any port is accepted with the same path (RFC 8252 §7.3).
 */
export const DEV_REDIRECT_URI = 'http://127.0.0.1/callback'

/** Options of {@link createDevAuthServer} and {@link startDevAuthServer}. */
export interface DevAuthServerOptions {
  /** The MCP servers to issue tokens for; a token is only ever issued for one of these. */
  resources: ReadonlyArray<{ uri: string; scopes: readonly string[] }>
  /** Pre-registered clients, in addition to {@link DEV_CLIENT_ID}. Dynamic registration is open. */
  clients?: readonly ClientMetadata[]
  /** Lifetime of ordinary access tokens in seconds (default 300). */
  accessTokenTtl?: number
  /** Lifetime of per-call approval tokens in seconds (default 60). */
  approvalTtl?: number
  /** Where to log. Default: warnings and errors to the console, info dropped. */
  logger?: Partial<DevLogger>
  /**
   * The token exchange policy (RFC 8693): which MCP servers may exchange their callers' tokens
   * for which downstream resources and scopes. Empty (default): every exchange is refused.
   */
  tokenExchange?: readonly TokenExchangeRule[]
  /**
   * Issuers whose JWTs the JWT-bearer grant (RFC 7523) accepts, with their public keys: an
   * enterprise IdP's ID-JAGs or a workload platform's tokens, for agents without a user. Empty
   * (default): the grant is not offered.
   */
  jwtBearer?: readonly JwtBearerTrust[]
}

/** Options of {@link startDevAuthServer}. */
export interface StartDevAuthServerOptions extends DevAuthServerOptions {
  /** Port on the loopback host; 0 or absent picks a free one. */
  port?: number
  /** `127.0.0.1` (default), `::1` or `localhost`; anything else is refused. */
  host?: string
  /**
   * Announce at start that automated clients will sign in with `devInteraction()`. It changes
   * nothing on the server: the headless path drives the very same pages and forms.
   */
  headless?: boolean
}

/** A development authorization server bound to an issuer, before it listens. */
export interface DevAuthServerApp {
  /** The issuer identifier (`iss`), e.g. `http://127.0.0.1:4000`. */
  readonly issuer: string
  /** The oidc-provider instance (a Koa app). Untyped on purpose: oidc-provider ships no types. */
  readonly provider: unknown
  /** The Node request listener: interaction pages first, then oidc-provider. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void
}

/** A running development authorization server. */
export interface DevAuthServer {
  /** The issuer identifier, `http://127.0.0.1:<port>`; its metadata is at `/.well-known/openid-configuration`. */
  readonly issuer: string
  /** The oidc-provider instance, for tests that need to look inside. */
  readonly provider: unknown
  /** Stops listening and closes every open connection. */
  close(): Promise<void>
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/ // RFC 6749 §3.3 scope-token
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost'])

function fail(message: string): never {
  throw new TypeError(`@callproof/dev-auth-server: ${message}`)
}

function validateResources(resources: DevAuthServerOptions['resources']): DevResource[] {
  if (!Array.isArray(resources) || resources.length === 0) {
    fail('options.resources must list at least one { uri, scopes } resource')
  }
  const seen = new Set<string>()
  return resources.map(({ uri, scopes }) => {
    const url = typeof uri === 'string' ? URL.parse(uri) : null
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hash || url.search) {
      fail(
        `resource ${JSON.stringify(uri)} must be an absolute http(s) URI without query or fragment`,
      )
    }
    if (seen.has(uri)) fail(`resource ${uri} is listed twice`)
    seen.add(uri)
    if (
      !Array.isArray(scopes) ||
      scopes.some((s) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))
    ) {
      fail(`resource ${uri} needs scopes as an array of scope tokens (RFC 6749 §3.3)`)
    }
    return { uri, scopes: [...scopes] }
  })
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0)
    fail(`${name} must be a positive integer (seconds)`)
  return value
}

function resolveLogger(logger: Partial<DevLogger> | undefined): DevLogger {
  return {
    info: logger?.info ?? (() => {}),
    warn: logger?.warn ?? ((m) => console.warn(m)),
    error: logger?.error ?? ((m, e) => console.error(m, e)),
  }
}

async function signingKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(privateKey)
  return { ...jwk, alg: 'ES256', use: 'sig', kid: await calculateJwkThumbprint(jwk) }
}

/**
 * Builds the development authorization server for a known issuer without listening: the
 * oidc-provider instance and a Node request listener that serves the login, MFA, consent and
 * approval pages and hands everything else to oidc-provider. Keys are generated per call and live
 * in memory only.
 *
 * Prefer {@link startDevAuthServer}, which picks the port and guards the host.
 *
 * @param issuer - the issuer URL, an `http://` loopback origin
 * @throws TypeError on invalid options, at creation time
 * @example
 * ```ts
 * const app = await createDevAuthServer('http://127.0.0.1:4000', { resources })
 * http.createServer(app.handler).listen(4000, '127.0.0.1')
 * ```
 */
export async function createDevAuthServer(
  issuer: string,
  options: DevAuthServerOptions,
): Promise<DevAuthServerApp> {
  const issuerUrl = URL.parse(issuer)
  if (
    !issuerUrl ||
    issuerUrl.protocol !== 'http:' ||
    issuerUrl.pathname !== '/' ||
    issuerUrl.search
  ) {
    fail(`issuer ${JSON.stringify(issuer)} must be an http:// origin`)
  }
  const host = issuerUrl.hostname.replace(/^\[|\]$/g, '')
  if (!LOOPBACK_HOSTS.has(host))
    fail(`issuer host ${host} is not loopback; this server is for development only`)
  const resources = validateResources(options.resources)
  const accessTokenTtl = positive(options.accessTokenTtl, 300, 'accessTokenTtl')
  const approvalTtl = positive(options.approvalTtl, 60, 'approvalTtl')
  const logger = resolveLogger(options.logger)
  const tokenExchange = validateExchangeRules(options.tokenExchange, fail)
  const jwtBearer = validateJwtBearerTrust(options.jwtBearer, fail)
  const iss = issuerUrl.origin

  const clients: ClientMetadata[] = [
    {
      client_id: DEV_CLIENT_ID,
      client_name: 'callproof development client',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [DEV_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    ...(options.clients ?? []),
  ]

  const provider = createProvider({
    issuer: iss,
    resources,
    clients,
    signingKey: await signingKey(),
    cookieKeys: [randomBytes(32).toString('base64url')],
    accessTokenTtl,
    approvalTtl,
    tokenExchange,
    jwtBearer,
    renderLogout(ctx, form) {
      for (const [name, value] of Object.entries(pageHeaders())) ctx.set(name, value)
      ctx.body =
        form === undefined
          ? pageHtml('Signed out', loggedOutPage())
          : pageHtml('Sign out', logoutPage({ form }))
    },
    renderError(ctx, out) {
      // oidc-provider keeps the error status; the page gets the same headers as every other.
      for (const [name, value] of Object.entries(pageHeaders())) ctx.set(name, value)
      ctx.body = pageHtml(
        'Error',
        errorPage({ error: out['error'] ?? 'error', description: out['error_description'] }),
      )
    },
  })
  provider.on('server_error', (_ctx, error) => logger.error('dev-auth-server: server error', error))

  const interactions = createInteractionHandler({
    provider,
    issuer: iss,
    resources: resources.map((r) => r.uri),
    csrfKey: randomBytes(32),
    logger,
  })
  const oidc = provider.callback()
  const allowedHosts = new Set(
    [...LOOPBACK_HOSTS].map((h) => `${h.includes(':') ? `[${h}]` : h}:${issuerUrl.port || '80'}`),
  )

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    // A DNS-rebinding page reaches a loopback server under a foreign Host name; refuse it.
    if (!allowedHosts.has(req.headers.host ?? '')) {
      res.statusCode = 421
      res.setHeader('Content-Type', 'text/plain; charset=utf-8')
      res.end('unexpected Host header\n')
      return
    }
    // RFC 8414 clients (MCP clients try this first) find the same document oidc-provider serves
    // at the OpenID Connect discovery path; the issuer has no path, so the two coincide.
    if (req.url === '/.well-known/oauth-authorization-server') {
      req.url = '/.well-known/openid-configuration'
    }
    interactions(req, res)
      .then((handled) => {
        if (!handled) oidc(req, res)
      })
      .catch((error: unknown) => {
        logger.error('dev-auth-server: request failed', error)
        if (!res.headersSent) {
          res.statusCode = 500
          res.end()
        }
      })
  }

  return { issuer: iss, provider, handler }
}

/**
 * Starts the development authorization server on loopback and resolves once it listens.
 *
 * It is oidc-provider (a certified OpenID Provider) configured for MCP: DPoP-bound RFC 9068 JWT
 * access tokens (ES256, `cnf.jkt`) for exactly one configured resource each, PKCE S256 for every
 * client, rotating refresh tokens, acr levels `urn:callproof:acr:pwd` and `urn:callproof:acr:mfa`,
 * one-time `mcp_tool_call` approvals (RFC 9396), open dynamic client registration, and real
 * login / MFA / consent / approval pages. Test users and codes are published: see the README.
 *
 * @example
 * ```ts
 * const as = await startDevAuthServer({
 *   resources: [{ uri: 'http://127.0.0.1:3000/mcp', scopes: ['drive:read', 'drive:write'] }],
 * })
 * console.log(as.issuer) // http://127.0.0.1:54321
 * await as.close()
 * ```
 * @throws TypeError when `host` is not loopback or the resources are invalid
 * @see https://www.rfc-editor.org/rfc/rfc9068 JWT access tokens
 * @see https://www.rfc-editor.org/rfc/rfc9449 DPoP
 * @see https://www.rfc-editor.org/rfc/rfc8707 resource indicators
 * @see https://www.rfc-editor.org/rfc/rfc9470 step-up authentication
 * @see https://www.rfc-editor.org/rfc/rfc9396 rich authorization requests
 */
export async function startDevAuthServer(
  options: StartDevAuthServerOptions,
): Promise<DevAuthServer> {
  const host = options.host ?? '127.0.0.1'
  if (!LOOPBACK_HOSTS.has(host)) {
    fail(
      `host ${host} is not loopback; the development server only listens on 127.0.0.1, ::1 or localhost`,
    )
  }
  validateResources(options.resources)
  validateExchangeRules(options.tokenExchange, fail)
  validateJwtBearerTrust(options.jwtBearer, fail)
  const logger = resolveLogger(options.logger)
  // The issuer names the port, so the app can only be built once the socket listens.
  const ready: { handler?: DevAuthServerApp['handler'] } = {}
  const server: Server = createServer((req, res) => {
    if (ready.handler) return ready.handler(req, res)
    res.statusCode = 503
    res.end()
  })
  const listenHost = host === 'localhost' ? '127.0.0.1' : host
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, listenHost, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const issuer = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`
  let app: DevAuthServerApp
  try {
    app = await createDevAuthServer(issuer, options)
  } catch (error) {
    server.close()
    throw error
  }
  ready.handler = app.handler
  logger.warn(
    [
      `callproof dev-auth-server listening at ${app.issuer} (DEVELOPMENT ONLY, loopback only).`,
      `  test users: ${DEV_USERS.map((u) => `${u.id} / ${u.password}`).join(', ')}; MFA code ${DEV_MFA_CODE}`,
      `  resources: ${options.resources.map((r) => r.uri).join(', ')}`,
      ...(options.headless
        ? [
            '  HEADLESS: automated clients sign in as the test users with devInteraction(), which',
            '  fills in the same pages a person sees. There is no server-side bypass.',
          ]
        : []),
    ].join('\n'),
  )
  return {
    issuer: app.issuer,
    provider: app.provider,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }
}
