/**
 * The reference demo server: a small file drive protected by callproof.
 *
 * @example
 * ```ts
 * const drive = await startDrive({ port: 0, issuer: 'http://127.0.0.1:4000' })
 * console.log(drive.url) // http://127.0.0.1:<port>/mcp
 * await drive.close()
 * ```
 * @module
 */
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import { createNonceSource } from '@callproof/core'
import type { NonceSource, ReplayStore } from '@callproof/core'
import { createCallproof, createDownstreamCredentials, discoverIssuer } from '@callproof/server'
import { createCallproof as createCallproofOnV2 } from '@callproof/server/v2'
import type {
  AuditSink,
  CallproofEnv,
  DownstreamCredentials,
  SessionStore,
} from '@callproof/server'
import { createRedisStores } from '@callproof/server/redis'
import type { RedisStores } from '@callproof/server/redis'
import { Drives } from './files.js'
import { driveTools } from './tools.js'
import type { DriveMail } from './tools.js'

export { Drives, DrivePathError, SEED_FILES, checkPath } from './files.js'
export type { FileEntry } from './files.js'
export { DOWNSTREAM_META_KEY, MFA, driveTools } from './tools.js'
export type { DriveMail, DriveToolsOptions } from './tools.js'

/** Options of {@link createDriveApp}. */
export interface DriveAppOptions {
  /** The trusted authorization server (its metadata's `jwks_uri` gives the keys). */
  issuer: string
  /** The resource URI (`http://127.0.0.1:<port>/mcp`, or the public URI of a load balancer). */
  resource: string
  /** The origin this instance is reached at directly, when it differs from the resource's. */
  origin?: string
  /** Require DPoP nonces: `true` for a nonce source keyed by `CALLPROOF_NONCE_SECRET` (or random). */
  nonce?: boolean | NonceSource
  /** Where audit events go. */
  audit?: AuditSink
  /** Seed every drive with the same files (default true). */
  seed?: boolean
  /**
   * Shared replay/approval and session state, e.g. from `createRedisStores` (default in memory).
   * Instances behind one load balancer must share them (and, with nonces, `CALLPROOF_NONCE_SECRET`).
   */
  stores?: { replay: ReplayStore; sessions: SessionStore }
  /** The drives (default a fresh in-memory set). */
  drives?: Drives
  /** A mail API for `email_file` (without it the drive has no such tool). */
  mail?: DriveMail
  /**
   * The MCP SDK line behind callproof: `v1` (default, `@callproof/server`: MCP 2025-11-25) or
   * `v2` (`@callproof/server/v2`: MCP 2026-07-28 and 2025-11-25). Nothing else changes.
   */
  sdk?: SdkLine
}

/** The MCP SDK lines the drive runs on. */
export type SdkLine = 'v1' | 'v2'

/**
 * The drive as a Hono app: the metadata document and the `/mcp` endpoint behind callproof.
 *
 * @example
 * ```ts
 * const app = createDriveApp({ issuer: 'http://127.0.0.1:4000', resource: 'http://127.0.0.1:3000/mcp' })
 * serve({ fetch: app.fetch, port: 3000, hostname: '127.0.0.1' })
 * ```
 */
export function createDriveApp(options: DriveAppOptions): Hono<CallproofEnv> {
  const resourceUrl = new URL(options.resource)
  const instance = new URL(options.origin ?? resourceUrl.origin)
  const nonce =
    options.nonce === true
      ? createNonceSource({
          secret:
            process.env['CALLPROOF_NONCE_SECRET'] ?? crypto.getRandomValues(new Uint8Array(32)),
        })
      : options.nonce === false || options.nonce === undefined
        ? undefined
        : options.nonce
  const loopbackAliases = (url: URL) => {
    const port = url.port === '' ? '' : `:${url.port}`
    return ['127.0.0.1', 'localhost', '[::1]'].map((name) => `${name}${port}`)
  }
  const hosts = [...new Set([resourceUrl.host, instance.host, ...loopbackAliases(instance)])]
  const origins = hosts.flatMap((host) => [`http://${host}`, `https://${host}`])

  const create = options.sdk === 'v2' ? createCallproofOnV2 : createCallproof
  const callproof = create({
    resource: options.resource,
    issuers: options.issuer,
    tools: driveTools(options.drives ?? new Drives({ seed: options.seed ?? true }), {
      ...(options.mail !== undefined ? { mail: options.mail } : {}),
    }),
    allowedHosts: hosts,
    allowedOrigins: origins,
    resourceName: 'callproof drive',
    ...(options.stores !== undefined
      ? { replay: options.stores.replay, sessions: { store: options.stores.sessions } }
      : {}),
    ...(nonce !== undefined ? { nonce } : {}),
    ...(options.audit !== undefined ? { audit: options.audit } : {}),
  })
  const app = new Hono<CallproofEnv>()
  callproof.mount(app)
  return app
}

/** Options of {@link startDrive}. */
export interface StartDriveOptions {
  /** Port on 127.0.0.1 (default 0: a free port). */
  port?: number
  /** Address to bind (default 127.0.0.1). */
  host?: string
  /** The trusted authorization server. */
  issuer: string
  /** The public resource URI shared by several instances (default `http://127.0.0.1:<port>/mcp`). */
  resource?: string
  /** Redis URL: replay, approval and session state shared with other instances through Redis. */
  redis?: string
  /**
   * Replay/approval and session stores made by the caller (e.g. with their own quotas), instead
   * of the defaults or `redis`. The caller closes them.
   */
  stores?: { replay: ReplayStore; sessions: SessionStore }
  /** Require DPoP nonces. */
  nonce?: boolean
  /** Where audit events go. */
  audit?: AuditSink
  /** Seed every drive with the same files (default true). */
  seed?: boolean
  /** The MCP SDK line behind callproof (default `v1`; see {@link DriveAppOptions.sdk}). */
  sdk?: SdkLine
  /**
   * The mail API `email_file` sends through, and how this drive authenticates to the
   * authorization server to exchange its callers' tokens for mail credentials.
   */
  mail?: {
    /** The mail API's origin; its resource identifier is `<url>/`. */
    readonly url: string
    /** This drive's client id at the issuer (private_key_jwt, token exchange allowed). */
    readonly clientId: string
    /** The private key of that client. */
    readonly clientKey: CryptoKey
  }
}

/** A running drive. */
export interface RunningDrive {
  /** This instance's MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string
  /** This instance's origin, `http://127.0.0.1:<port>`. */
  readonly origin: string
  /** The resource URI tokens must name in `aud` and proofs in `htu`. */
  readonly resource: string
  /** Stops listening and closes open connections. */
  close(): Promise<void>
}

/**
 * Starts the drive on 127.0.0.1.
 *
 * @example
 * ```ts
 * const drive = await startDrive({ issuer: 'http://127.0.0.1:4000' })
 * // mint a token with aud = drive.resource, then POST to drive.url
 * ```
 */
export async function startDrive(options: StartDriveOptions): Promise<RunningDrive> {
  const host = options.host ?? '127.0.0.1'
  let app: Hono<CallproofEnv> | undefined
  // Listen first: with port 0 the resource URI (which names the port) is known only afterwards.
  const server = serve({
    fetch: (request: Request) =>
      app === undefined ? new Response('starting', { status: 503 }) : app.fetch(request),
    port: options.port ?? 0,
    hostname: host,
  })
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const { port } = server.address() as AddressInfo
  const urlHost = host.includes(':') ? `[${host}]` : host
  const origin = `http://${urlHost}:${port}`
  const url = `${origin}/mcp`
  const resource = options.resource ?? url
  let redis: RedisStores | undefined
  try {
    if (options.redis !== undefined && options.stores !== undefined) {
      throw new Error('startDrive takes either redis or stores, not both')
    }
    if (options.redis !== undefined) {
      redis = createRedisStores({ url: options.redis })
      // Fail at start, not on the first call, when Redis is unreachable or would evict keys.
      await redis.ready()
    }
    let mail: DriveMail | undefined
    if (options.mail !== undefined) {
      const origin = new URL(options.mail.url).origin
      const credentials: DownstreamCredentials = createDownstreamCredentials({
        issuer: options.issuer,
        clientId: options.mail.clientId,
        clientKey: options.mail.clientKey,
        services: { mail: { resource: `${origin}/`, scopes: ['mail:send'] } },
        // The drive's audit also records each mail credential handed out or refused.
        ...(options.audit !== undefined ? { audit: options.audit } : {}),
      })
      mail = { url: origin, credentials }
    }
    app = createDriveApp({
      ...(mail !== undefined ? { mail } : {}),
      issuer: options.issuer,
      resource,
      origin,
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
      ...(options.audit !== undefined ? { audit: options.audit } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.sdk !== undefined ? { sdk: options.sdk } : {}),
      ...(redis !== undefined
        ? { stores: { replay: redis.replay, sessions: redis.sessions } }
        : {}),
      ...(options.stores !== undefined ? { stores: options.stores } : {}),
    })
  } catch (error) {
    await closeServer(server)
    await redis?.close()
    throw error
  }
  // Not awaited and not fatal (the authorization server may start after us), but an issuer that
  // cannot be discovered otherwise shows up only as every token being refused.
  discoverIssuer(options.issuer).catch((error: unknown) => {
    process.stderr.write(
      `drive: warning: ${error instanceof Error ? error.message : String(error)}; tokens will be refused until it answers\n`,
    )
  })
  return {
    url,
    origin,
    resource,
    close: async () => {
      await closeServer(server)
      await redis?.close()
    },
  }
}

function closeServer(server: ReturnType<typeof serve>): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
    if ('closeAllConnections' in server) server.closeAllConnections()
  })
}
