/**
 * `examples/everything`: the server the MCP conformance suite's server scenarios expect — their
 * tools, resources, resource template, prompts, completions and logging — with every primitive
 * behind a callproof policy and every request behind a per-call proof.
 *
 * It answers with SSE streams (`jsonResponse: false`): log and progress notifications travel on
 * the stream of the call that causes them.
 *
 * @example
 * ```ts
 * const server = await startEverything({ port: 0, issuer: 'http://127.0.0.1:4000' })
 * console.log(server.url) // http://127.0.0.1:<port>/mcp
 * await server.close()
 * ```
 * @module
 */
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import { createCallproof, discoverIssuer } from '@callproof/server'
import { createCallproof as createCallproofOnV2 } from '@callproof/server/v2'
import type { AuditSink, CallproofEnv } from '@callproof/server'
import { everythingTools } from './primitives.js'

export {
  EVERYTHING_SCOPES,
  JSON_SCHEMA_2020_12,
  OPERATOR,
  PNG_BASE64,
  SCOPE_PROMPTS,
  SCOPE_READ,
  SCOPE_TOOLS,
  WAV_BASE64,
  everythingTools,
} from './primitives.js'

/** Options of {@link createEverythingApp}. */
export interface EverythingAppOptions {
  /** The trusted authorization server (its metadata's `jwks_uri` gives the keys). */
  issuer: string
  /** The resource URI, `http://127.0.0.1:<port>/mcp`. */
  resource: string
  /** Where audit events go. */
  audit?: AuditSink
  /**
   * The MCP SDK line: `v1` (default; MCP 2025-11-25) or `v2` (`@callproof/server/v2`; MCP
   * 2026-07-28 and 2025-11-25).
   */
  sdk?: 'v1' | 'v2'
}

/**
 * The everything server as a Hono app: the metadata document and the `/mcp` endpoint.
 *
 * @example
 * ```ts
 * const app = createEverythingApp({ issuer, resource: 'http://127.0.0.1:3000/mcp' })
 * ```
 */
export function createEverythingApp(options: EverythingAppOptions): Hono<CallproofEnv> {
  const create = options.sdk === 'v2' ? createCallproofOnV2 : createCallproof
  const callproof = create({
    resource: options.resource,
    issuers: options.issuer,
    tools: everythingTools({ inputRequired: options.sdk === 'v2' }),
    jsonResponse: false,
    resourceName: 'callproof everything',
    ...(options.audit !== undefined ? { audit: options.audit } : {}),
  })
  const app = new Hono<CallproofEnv>()
  callproof.mount(app)
  return app
}

/** Options of {@link startEverything}. */
export interface StartEverythingOptions {
  /** Port on 127.0.0.1 (default 0: a free port). */
  port?: number
  /** The trusted authorization server. */
  issuer: string
  /** Where audit events go. */
  audit?: AuditSink
  /** The MCP SDK line (default `v1`, see {@link EverythingAppOptions.sdk}). */
  sdk?: 'v1' | 'v2'
}

/** A running everything server. */
export interface RunningEverything {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp` (also the resource URI). */
  readonly url: string
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string
  /** Stops listening and closes open connections. */
  close(): Promise<void>
}

/**
 * Starts the everything server on 127.0.0.1.
 *
 * @example
 * ```ts
 * const server = await startEverything({ issuer: 'http://127.0.0.1:4000' })
 * ```
 */
export async function startEverything(options: StartEverythingOptions): Promise<RunningEverything> {
  let app: Hono<CallproofEnv> | undefined
  // Listen first: with port 0 the resource URI (which names the port) is known only afterwards.
  const server = serve({
    fetch: (request: Request) =>
      app === undefined ? new Response('starting', { status: 503 }) : app.fetch(request),
    port: options.port ?? 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  const url = `${origin}/mcp`
  try {
    app = createEverythingApp({
      issuer: options.issuer,
      resource: url,
      ...(options.audit !== undefined ? { audit: options.audit } : {}),
      ...(options.sdk !== undefined ? { sdk: options.sdk } : {}),
    })
  } catch (error) {
    await closeServer(server)
    throw error
  }
  // Not fatal (the authorization server may start after us), but said once, not per refusal.
  discoverIssuer(options.issuer).catch((error: unknown) => {
    process.stderr.write(
      `everything: warning: ${error instanceof Error ? error.message : String(error)}; tokens will be refused until it answers\n`,
    )
  })
  return { url, origin, close: () => closeServer(server) }
}

function closeServer(server: ReturnType<typeof serve>): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
    if ('closeAllConnections' in server) server.closeAllConnections()
  })
}
