/**
 * The server side of `npm run bench`, run as its own process so that the client and the server
 * each have an event loop (and, on a 2-core machine, a core) of their own, as in production.
 *
 * It serves, each on its own loopback port: the test issuer (RFC 8414 metadata + JWKS, only read
 * at start), one endpoint per variant of the first table (callproof stateless; the baselines
 * with a fresh `McpServer` + transport per request, JSON responses), and for the second table
 * the SDK's idiomatic stateful server and callproof with its default sessions. Configuration
 * comes from the parent in `BENCH_SERVER_CONFIG`; when all endpoints listen it prints one line,
 * `READY <json>`, and it exits on SIGTERM (cleanly, so that `--cpu-prof` writes its profile).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import type { JWK } from 'jose'
import { MemoryReplayStore, createNonceSource } from '@callproof/core'
import { createCallproof } from '@callproof/server'
import { createCallproof as createCallproofOnV2 } from '@callproof/server/v2'
import type { SessionOptions } from '@callproof/server'
import { createRedisStores } from '@callproof/server/redis'
import type { RedisStores } from '@callproof/server/redis'
import { Drives, driveTools } from '@callproof/example-drive'
import { bearerApp, noAuthApp } from './plain.js'
import { statefulSdkApp } from './stateful.js'
import { statefulSdkV2App } from './stateful-v2.js'
import type { VariantName } from './variants.js'

/** What the parent passes in `BENCH_SERVER_CONFIG`. */
export interface ServerConfig {
  issuerJwk: JWK
  variants: VariantName[]
  redisUrl?: string
  /** Also serve the second table's two servers (pre-signed requests, the server alone). */
  presigned?: boolean
}

/** What the server prints after `READY `. */
export interface ServerReady {
  issuer: string
  endpoints: Partial<Record<VariantName, string>>
  /** The second table's endpoints: the SDK's idiomatic stateful server, and callproof. */
  presigned?: { sdk: string; callproof: string; sdkV2: string; callproofV2: string }
}

const config = JSON.parse(process.env['BENCH_SERVER_CONFIG'] ?? '') as ServerConfig

// --- the issuer: metadata and keys, fetched once by callproof's key cache --------------------
let issuer = ''
const issuerServer = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname
  const body =
    path === '/jwks'
      ? { keys: [config.issuerJwk] }
      : path.startsWith('/.well-known/')
        ? { issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` }
        : undefined
  res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body ?? { error: 'not_found' }))
})
await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve))
issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`

// --- the variants ---------------------------------------------------------------------------
type Serve = ReturnType<typeof serve>
const servers: Serve[] = []
const closers: (() => Promise<void>)[] = []

/** Listens first (the resource URI names the port), then builds the app for that resource. */
async function listen(build: (resource: string, origin: string) => Hono | Promise<Hono>) {
  // Requests that arrive before the app is built (none do: the parent waits for READY) get 503.
  const slot: { app?: Hono } = {}
  const server = serve({
    // The app gets the server's env ({ incoming, outgoing }), as `serve(app)` would give it.
    fetch: (request: Request, env: unknown) =>
      slot.app === undefined
        ? new Response('starting', { status: 503 })
        : slot.app.fetch(request, env),
    port: 0,
    hostname: '127.0.0.1',
  })
  servers.push(server)
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const resource = `${origin}/mcp`
  slot.app = await build(resource, origin)
  return resource
}

const STATELESS: SessionOptions = { mode: 'stateless' }

function callproofApp(
  resource: string,
  origin: string,
  extra: Partial<Parameters<typeof createCallproof>[0]>,
  create: typeof createCallproof = createCallproof,
): Hono {
  const callproof = create({
    resource,
    issuers: issuer,
    tools: driveTools(new Drives()),
    allowedOrigins: [origin],
    sessions: STATELESS,
    // The benchmark is one caller at full speed: lift its per-caller quotas (docs/operations.md,
    // "Quotas"), so that they are not what is measured; the total stays the default.
    replay: new MemoryReplayStore({ maxEntriesPerSubject: 100_000, maxEntriesPerClient: 100_000 }),
    ...extra,
  })
  const app = new Hono()
  callproof.mount(app)
  return app
}

const endpoints: Partial<Record<VariantName, string>> = {}
for (const name of config.variants) {
  switch (name) {
    case 'none':
      endpoints[name] = await listen(() => noAuthApp(new Drives()))
      break
    case 'bearer':
      endpoints[name] = await listen((resource, origin) =>
        bearerApp(new Drives(), {
          issuerJwk: config.issuerJwk,
          issuer,
          resource,
          allowedOrigins: [origin],
        }),
      )
      break
    case 'memory':
      endpoints[name] = await listen((resource, origin) => callproofApp(resource, origin, {}))
      break
    case 'redis':
      endpoints[name] = await listen(async (resource, origin) => {
        if (config.redisUrl === undefined) throw new Error('variant redis needs a redis URL')
        const redis: RedisStores = createRedisStores({
          url: config.redisUrl,
          replay: { maxEntriesPerSubject: 500_000, maxEntriesPerClient: 500_000 },
        })
        await redis.ready()
        closers.push(() => redis.close())
        return callproofApp(resource, origin, { replay: redis.replay })
      })
      break
    case 'nonce':
      endpoints[name] = await listen((resource, origin) =>
        callproofApp(resource, origin, {
          nonce: createNonceSource({ secret: crypto.getRandomValues(new Uint8Array(32)) }),
        }),
      )
      break
  }
}

// The second table: the SDK's own stateful server against callproof with its default, stateful,
// caller-bound sessions, both as a user would deploy them.
const presigned =
  config.presigned === true
    ? {
        sdk: await listen(() => statefulSdkApp(new Drives())),
        callproof: await listen((resource, origin) =>
          callproofApp(resource, origin, { sessions: {} }),
        ),
        // The same two on the MCP SDK v2 line (@modelcontextprotocol/server, @callproof/server/v2).
        sdkV2: await listen(() => statefulSdkV2App(new Drives())),
        callproofV2: await listen((resource, origin) =>
          callproofApp(resource, origin, { sessions: {} }, createCallproofOnV2),
        ),
      }
    : undefined

process.stdout.write(
  `READY ${JSON.stringify({ issuer, endpoints, ...(presigned && { presigned }) } satisfies ServerReady)}\n`,
)

process.once('SIGTERM', () => {
  for (const server of servers) {
    server.close()
    if ('closeAllConnections' in server) server.closeAllConnections()
  }
  issuerServer.close()
  issuerServer.closeAllConnections()
  Promise.allSettled(closers.map((close) => close())).then(() => process.exit(0))
})
