/**
 * The development stack on loopback: the development authorization server and a drive server
 * (callproof's, or the insecure baseline), each on a free port, closed together; or, for a team's
 * own MCP server (`callproof dev --resource`), the authorization server alone.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type * as DevAuthServerExports from '@callproof/dev-auth-server'
import type {
  ClientMetadata,
  DevInteraction,
  DevInteractionOptions,
  DevResource,
  TokenExchangeRule,
} from '@callproof/dev-auth-server'
import { exportJWK, generateKeyPair } from 'jose'
import type { AuditSink } from '@callproof/server'
import { startDrive } from '@callproof/example-drive'
import { startMail } from '@callproof/example-mail'
import type { SentMessage } from '@callproof/example-mail'
import { CliError, stripAnsi } from './io.js'

/** The scopes the drive's tools use. */
export const DRIVE_SCOPES = ['drive:read', 'drive:write', 'drive:share'] as const

/** The client id the drive authenticates as when it exchanges its callers' tokens for mail. */
export const DRIVE_CLIENT_ID = 'callproof-drive'

/** The exports of `@callproof/dev-auth-server`, loaded on demand. */
export type DevAuthServerModule = typeof DevAuthServerExports

/** Which drive server to start. */
export type DriveKind = 'callproof' | 'baseline'

/** Options of {@link startStack}. */
export interface StackOptions {
  readonly drive: DriveKind
  /** Port of the drive server (0 or absent: a free one). */
  readonly drivePort?: number
  /** Port of the authorization server (0 or absent: a free one). */
  readonly authPort?: number
  /** Require DPoP nonces on the callproof drive. */
  readonly nonce?: boolean
  /** Audit sink of the callproof drive. */
  readonly audit?: AuditSink
  /** Print oidc-provider's warnings (default: silent, the CLI prints its own lines). */
  readonly verbose?: boolean
  /**
   * Also start the mail API downstream of the drive, give the drive `email_file`, and let the
   * authorization server exchange the drive's callers' tokens for mail tokens.
   */
  readonly mail?: boolean
  /** Lifetime of ordinary access tokens in seconds (default 300). */
  readonly accessTokenTtl?: number
}

/** The mail API of a stack started with `mail`. */
export interface StackMail {
  /** The mail API's origin. */
  readonly origin: string
  /** Every message it sent, oldest first, with whom it was sent for. */
  sent(): readonly SentMessage[]
}

/** The running stack. */
export interface Stack {
  readonly kind: DriveKind
  /** The authorization server's issuer URL. */
  readonly issuer: string
  /** The drive's MCP endpoint. */
  readonly url: string
  /** The drive's resource URI (what tokens name in `aud`). */
  readonly resource: string
  /** For the baseline: who the process currently acts for. */
  readonly baseline?: InsecureDriveHandle
  /** The mail API downstream of the drive, when started with `mail`. */
  readonly mail?: StackMail
  /** The development server's headless sign-in, as a test user (see `devInteraction`). */
  devInteraction(options: DevInteractionOptions): DevInteraction
  /** The published test users and their development passwords. */
  readonly users: readonly { readonly id: string; readonly password: string }[]
  /** The published development one-time code for MFA. */
  readonly mfaCode: string
  /** Closes both servers; safe to call twice. */
  close(): Promise<void>
}

/** What the CLI uses of `@callproof/example-insecure-baseline` (loaded on demand). */
export interface InsecureDriveHandle {
  readonly url: string
  readonly origin: string
  readonly resource: string
  cachedSubject(): string | undefined
  files(sub: string): ReadonlyMap<string, { content: string; sharedWith: string[] }>
  close(): Promise<void>
}

interface BaselineModule {
  startInsecureDrive(options: {
    issuer: string
    port?: number
    mail?: { url: string; clientId: string; clientKey: CryptoKey }
  }): Promise<InsecureDriveHandle>
}

/**
 * Loads the insecure baseline (`@callproof/example-insecure-baseline`, a dependency of this
 * package) only when a command needs it: most commands never serve a deliberately insecure drive.
 */
async function loadBaseline(): Promise<BaselineModule> {
  try {
    return (await import('@callproof/example-insecure-baseline')) as BaselineModule
  } catch (cause) {
    throw new CliError('cannot load the insecure baseline (@callproof/example-insecure-baseline)', {
      hint: 'run `npm install` then `npm run build` at the repository root',
      cause,
    })
  }
}

/**
 * Runs `step` with oidc-provider's start-up notices filtered out: it warns about the Node version
 * and its in-memory adapter, both expected for a development server, and the CLI prints its own
 * lines about what it started. Other console output passes through.
 */
async function withoutProviderNotices<T>(step: () => Promise<T>): Promise<T> {
  const { warn, info } = console
  const fromProvider = (args: unknown[]) => stripAnsi(String(args[0])).startsWith('oidc-provider ')
  console.warn = (...args: unknown[]) => void (fromProvider(args) || warn(...args))
  console.info = (...args: unknown[]) => void (fromProvider(args) || info(...args))
  try {
    return await step()
  } finally {
    console.warn = warn
    console.info = info
  }
}

/**
 * Loads `@callproof/dev-auth-server` on demand: oidc-provider announces itself when its module
 * loads, and commands that do not need it should not pay for it.
 */
export function loadDevAuthServer(verbose = false): Promise<DevAuthServerModule> {
  return verbose
    ? import('@callproof/dev-auth-server')
    : withoutProviderNotices(() => import('@callproof/dev-auth-server'))
}

/** A free TCP port on 127.0.0.1 (the drive's port must be known before the authorization server starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Options of {@link startAuthServer}. */
export interface AuthServerOptions {
  /** The MCP servers to issue tokens for, each `{ uri, scopes }` (see `@callproof/dev-auth-server`). */
  readonly resources: readonly DevResource[]
  /** Port of the authorization server (0 or absent: a free one). */
  readonly authPort?: number
  /** Print oidc-provider's warnings (default: silent, the CLI prints its own lines). */
  readonly verbose?: boolean
  /** Pre-registered clients (see `@callproof/dev-auth-server`). */
  readonly clients?: readonly ClientMetadata[]
  /** The token exchange policy (see `@callproof/dev-auth-server`). */
  readonly tokenExchange?: readonly TokenExchangeRule[]
  /** Lifetime of ordinary access tokens in seconds (default: the server's, 300). */
  readonly accessTokenTtl?: number
}

/** A running development authorization server, as `callproof dev --resource` starts it. */
export interface AuthServer {
  /** The issuer URL, what a resource server names in `issuers`. */
  readonly issuer: string
  /** The resources it issues tokens for; any other `resource` is refused with `invalid_target`. */
  readonly resources: readonly DevResource[]
  /** The development server's headless sign-in, as a test user (see `devInteraction`). */
  devInteraction(options: DevInteractionOptions): DevInteraction
  /** The published test users and their development passwords. */
  readonly users: readonly { readonly id: string; readonly password: string }[]
  /** The published development one-time code for MFA. */
  readonly mfaCode: string
  /** Stops the server; safe to call twice. */
  close(): Promise<void>
}

/**
 * Starts the development authorization server on loopback for the given resources, with
 * oidc-provider's start-up notices filtered out unless `verbose`. A port in use becomes a
 * one-line {@link CliError}.
 *
 * @example
 * ```ts
 * const auth = await startAuthServer({
 *   resources: [{ uri: 'http://127.0.0.1:3000/mcp', scopes: ['notes:read', 'notes:write'] }],
 *   authPort: 4000,
 * })
 * auth.issuer // http://127.0.0.1:4000
 * await auth.close()
 * ```
 */
export async function startAuthServer(options: AuthServerOptions): Promise<AuthServer> {
  const devAuth = await loadDevAuthServer(options.verbose === true)
  const start = () =>
    devAuth.startDevAuthServer({
      resources: options.resources,
      headless: true,
      ...(options.clients === undefined ? {} : { clients: options.clients }),
      ...(options.tokenExchange === undefined ? {} : { tokenExchange: options.tokenExchange }),
      ...(options.authPort === undefined ? {} : { port: options.authPort }),
      ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }),
      logger: options.verbose === true ? {} : { warn: () => undefined, info: () => undefined },
    })
  const auth = await (options.verbose === true ? start() : withoutProviderNotices(start)).catch(
    (cause: unknown) => {
      throw portError('authorization server', options.authPort, cause)
    },
  )
  let closed: Promise<void> | undefined
  return {
    issuer: auth.issuer,
    resources: options.resources.map((r) => ({ uri: r.uri, scopes: [...r.scopes] })),
    devInteraction: devAuth.devInteraction,
    users: devAuth.DEV_USERS,
    mfaCode: devAuth.DEV_MFA_CODE,
    close: () => (closed ??= auth.close()),
  }
}

/**
 * Starts the authorization server and a drive on loopback. The authorization server issues
 * tokens only for the drive's resource URI, so the drive's port is chosen first.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const chosen = options.drivePort === 0 ? undefined : options.drivePort
  // Without a chosen port a free one is probed, and another process may take it before the drive
  // binds it: then the whole stack starts again on another probed port. A port the user chose is
  // never changed behind their back.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOn(chosen ?? (await freePort()), options)
    } catch (error) {
      const taken =
        error instanceof CliError && (error.cause as { code?: string })?.code === 'EADDRINUSE'
      if (chosen !== undefined || !taken || attempt === 3) throw error
    }
  }
}

async function startStackOn(drivePort: number, options: StackOptions): Promise<Stack> {
  const closers: (() => Promise<void>)[] = []
  const close = async () => {
    const pending = closers.splice(0).reverse()
    for (const c of pending) await c().catch(() => undefined)
  }
  try {
    const resource = `http://127.0.0.1:${drivePort}/mcp`
    const downstream = options.mail === true ? await mailSetup(resource) : undefined
    const auth = await startAuthServer({
      resources: [{ uri: resource, scopes: [...DRIVE_SCOPES] }],
      ...(downstream === undefined
        ? {}
        : { clients: [downstream.client], tokenExchange: [downstream.rule] }),
      ...(options.authPort === undefined ? {} : { authPort: options.authPort }),
      ...(options.verbose === true ? { verbose: true } : {}),
      ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }),
    })
    closers.push(() => auth.close())
    let mail: StackMail | undefined
    let driveMail: { url: string; clientId: string; clientKey: CryptoKey } | undefined
    if (downstream !== undefined) {
      const running = await startMail({
        issuer: auth.issuer,
        actors: [DRIVE_CLIENT_ID],
        port: downstream.port,
      }).catch((cause: unknown) => {
        throw portError('mail API', downstream.port, cause)
      })
      closers.push(() => running.close())
      mail = { origin: running.origin, sent: running.sent }
      driveMail = { url: running.origin, clientId: DRIVE_CLIENT_ID, clientKey: downstream.key }
    }
    if (options.drive === 'baseline') {
      const { startInsecureDrive } = await loadBaseline()
      const baseline = await startInsecureDrive({
        issuer: auth.issuer,
        port: drivePort,
        ...(driveMail === undefined ? {} : { mail: driveMail }),
      }).catch((cause: unknown) => {
        throw portError('insecure baseline', drivePort, cause)
      })
      closers.push(() => baseline.close())
      return {
        kind: 'baseline',
        issuer: auth.issuer,
        url: baseline.url,
        resource,
        baseline,
        ...(mail === undefined ? {} : { mail }),
        devInteraction: auth.devInteraction,
        users: auth.users,
        mfaCode: auth.mfaCode,
        close,
      }
    }
    const drive = await startDrive({
      issuer: auth.issuer,
      port: drivePort,
      ...(options.nonce === true ? { nonce: true } : {}),
      ...(options.audit === undefined ? {} : { audit: options.audit }),
      ...(driveMail === undefined ? {} : { mail: driveMail }),
    }).catch((cause: unknown) => {
      throw portError('drive server', drivePort, cause)
    })
    closers.push(() => drive.close())
    return {
      kind: 'callproof',
      issuer: auth.issuer,
      url: drive.url,
      resource: drive.resource,
      ...(mail === undefined ? {} : { mail }),
      devInteraction: auth.devInteraction,
      users: auth.users,
      mfaCode: auth.mfaCode,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

/**
 * What the authorization server must know before the mail API listens: its port, the drive's
 * client (private_key_jwt with a key made now, in memory only) and the one exchange it allows.
 */
async function mailSetup(driveResource: string): Promise<{
  port: number
  key: CryptoKey
  client: ClientMetadata
  rule: TokenExchangeRule
}> {
  const port = await freePort()
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  return {
    port,
    key: privateKey,
    client: {
      client_id: DRIVE_CLIENT_ID,
      client_name: 'callproof drive (token exchange for the mail API)',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256' }] },
      grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      response_types: [],
      redirect_uris: [],
    },
    rule: {
      client: DRIVE_CLIENT_ID,
      subject: driveResource,
      resource: `http://127.0.0.1:${port}/`,
      scopes: ['mail:send'],
    },
  }
}

function portError(what: string, port: number | undefined, cause: unknown): unknown {
  if ((cause as { code?: string }).code === 'EADDRINUSE') {
    return new CliError(`cannot start the ${what}: port ${port ?? '?'} is already in use`, {
      hint: 'choose another port, or leave the port out to pick a free one',
      cause,
    })
  }
  return cause
}
