/**
 * Two server instances behind one resource URI, sharing one real Redis (replay, approvals,
 * sessions) and one nonce secret, on real HTTP: what one instance consumed, the other refuses;
 * a session follows its caller to the other instance and nobody else; Redis down is 503 with
 * Retry-After and no tool runs.
 *
 * Twice: with instances built from `createCallproof` + `@callproof/server/redis` in this process
 * (counting tool runs), and with the drive example started by its real command line
 * (`--redis <url> --nonce --resource <uri>`) as two separate processes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import {
  argsDigest,
  bindingFor,
  createNonceSource,
  createProof,
  jwkThumbprint,
} from '@callproof/core'
import { callerOf, createCallproof, createToolRegistry } from '../src/index.js'
import { createCallproof as createCallproofOnV2 } from '../src/v2.js'
import type { CallproofEnv } from '../src/index.js'
import { createRedisStores, type RedisStores } from '../src/redis/index.js'
import { startRedisServer, type TestRedisServer } from './support/redis-server.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'

// Real processes and reconnections: more room than the 5 s default on a busy machine.
vi.setConfig({ testTimeout: 20_000 })

const RESOURCE = 'https://drive.example/mcp'
const NONCE_SECRET = crypto.getRandomValues(new Uint8Array(32))

/** A minimal authorization server: RFC 8414 metadata, a JWKS, and a token minter. */
interface TestIssuer {
  issuer: string
  mint(claims: Record<string, unknown>): Promise<string>
  close(): Promise<void>
}

async function startIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = crypto.randomUUID()
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  let issuer = ''
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const body =
      path === '/.well-known/oauth-authorization-server'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : path === '/jwks'
          ? { keys: [jwk] }
          : undefined
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body ?? { error: 'not_found' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    mint(claims) {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({
        iss: issuer,
        iat: now,
        exp: now + 300,
        jti: crypto.randomUUID(),
        sub: 'alice',
        client_id: 'test-client',
        ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .sign(privateKey)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** A client's non-extractable P-256 key pair and its RFC 7638 thumbprint. */
interface ClientKey {
  keyPair: CryptoKeyPair
  jkt: string
}

async function clientKey(): Promise<ClientKey> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
  return { keyPair, jkt: await jwkThumbprint(jwk as JWK) }
}

interface Instance {
  url: string
  stores: RedisStores
  close(): Promise<void>
}

let redis: TestRedisServer
let issuer: TestIssuer
let a: Instance
let b: Instance
/** Tool runs, by tool name: a refusal must leave these unchanged. */
const runs = new Map<string, number>()

async function startInstance(sdk: 'v1' | 'v2'): Promise<Instance> {
  const tools = createToolRegistry({ name: 'drive', version: '1.0.0' })
  const count = (name: string) => runs.set(name, (runs.get(name) ?? 0) + 1)
  tools.register('whoami', { policy: { scopes: ['drive:read'] } }, (extra) => {
    count('whoami')
    return { content: [{ type: 'text', text: callerOf(extra).sub }] }
  })
  tools.register(
    'share_file',
    { policy: { scopes: ['drive:share'], approval: 'per-call' } },
    () => {
      count('share_file')
      return { content: [{ type: 'text', text: 'shared' }] }
    },
  )
  const stores = createRedisStores({ url: redis.url, timeoutMs: 300, maxReconnectDelayMs: 100 })
  await stores.ready()
  const create = sdk === 'v2' ? createCallproofOnV2 : createCallproof
  const callproof = create({
    resource: RESOURCE,
    issuers: issuer.issuer,
    tools,
    replay: stores.replay,
    nonce: createNonceSource({ secret: NONCE_SECRET }),
    sessions: { mode: 'stateful', store: stores.sessions, ttlSeconds: 600 },
  })
  const app = new Hono<CallproofEnv>()
  callproof.mount(app)
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise<void>((resolve) =>
    server.listening ? resolve() : server.once('listening', resolve),
  )
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    stores,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        if ('closeAllConnections' in server) server.closeAllConnections()
      })
      await stores.close()
    },
  }
}

/** A caller: one key, a token, and the last nonce any instance handed out. */
interface Caller {
  key: ClientKey
  token: string
}

let nonce: string | undefined

async function caller(claims: Record<string, unknown> = {}, key?: ClientKey): Promise<Caller> {
  const k = key ?? (await clientKey())
  const token = await issuer.mint({
    aud: RESOURCE,
    cnf: { jkt: k.jkt },
    scope: 'drive:read drive:share',
    ...claims,
  })
  return { key: k, token }
}

let nextId = 1
function toolCall(name: string, args: Record<string, unknown> = {}) {
  return { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } }
}
function initialize() {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'redis-e2e', version: '0.0.0' },
    },
  }
}

/** The headers and body of one request, with a fresh proof bound to `message` and the nonce. */
async function request(
  who: Caller,
  message: unknown,
  options: { sessionId?: string; method?: string } = {},
): Promise<RequestInit> {
  const method = options.method ?? 'POST'
  const headers: Record<string, string> = {
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'mcp-protocol-version': '2025-06-18',
    authorization: `DPoP ${who.token}`,
    dpop: await createProof(who.key.keyPair, {
      htm: method,
      htu: RESOURCE,
      accessToken: who.token,
      ...(nonce !== undefined ? { nonce } : {}),
      ...(message !== undefined ? { mcp: await bindingFor(message) } : {}),
    }),
  }
  if (options.sessionId !== undefined) headers['mcp-session-id'] = options.sessionId
  return { method, headers, ...(message !== undefined ? { body: JSON.stringify(message) } : {}) }
}

async function send(instance: Instance, init: RequestInit): Promise<Response> {
  const response = await fetch(instance.url, init)
  const fresh = response.headers.get('dpop-nonce')
  if (fresh !== null) nonce = fresh
  return response
}

/** Sends with a fresh proof; on a nonce challenge, retries once with the nonce it carried. */
async function call(
  instance: Instance,
  who: Caller,
  message: unknown,
  options: { sessionId?: string; method?: string } = {},
): Promise<Response> {
  const first = await send(instance, await request(who, message, options))
  if (first.status !== 401 || !/use_dpop_nonce/.test(first.headers.get('www-authenticate') ?? '')) {
    return first
  }
  return send(instance, await request(who, message, options))
}

/** The absolute expiry of a Redis key, in ms since the epoch (PEXPIRETIME, Redis 7). */
async function expiryOf(key: string): Promise<number> {
  const reply = await redis.command('PEXPIRETIME', key)
  const match = /^:(\d+)\r\n$/.exec(reply)
  // -1 (no expiry) or -2 (no such key) fail here too.
  if (match === null) throw new Error(`PEXPIRETIME ${key} answered ${JSON.stringify(reply)}`)
  return Number(match[1])
}

function challengeOf(response: Response): string {
  return response.headers.get('www-authenticate') ?? ''
}

beforeAll(async () => {
  redis = await startRedisServer()
  issuer = await startIssuer()
})

afterAll(async () => {
  await issuer?.close()
  await redis?.stop()
})

beforeEach(() => {
  runs.clear()
})

describe.each(['v1', 'v2'] as const)('two instances sharing Redis (SDK %s)', (sdk) => {
  beforeAll(async () => {
    a = await startInstance(sdk)
    b = await startInstance(sdk)
  })
  afterAll(async () => {
    await a?.close()
    await b?.close()
  })

  it('hands out nonces that the other instance accepts, and demands one', async () => {
    nonce = undefined
    const alice = await caller()
    const refused = await send(a, await request(alice, toolCall('whoami')))
    expect(refused.status).toBe(401)
    expect(challengeOf(refused)).toMatch(/error="use_dpop_nonce"/)
    expect(nonce).toBeDefined()
    expect(runs.get('whoami')).toBeUndefined()
    // The nonce from A works on B.
    const ok = await send(b, await request(alice, toolCall('whoami')))
    expect(ok.status).toBe(200)
    expect(runs.get('whoami')).toBe(1)
  })

  it('refuses on B a proof already used on A', async () => {
    const alice = await caller()
    expect((await call(a, alice, toolCall('whoami'))).status).toBe(200) // also fetches a nonce
    const init = await request(alice, toolCall('whoami'))
    expect((await send(a, init)).status).toBe(200)
    expect(runs.get('whoami')).toBe(2)

    // The very same request (token, proof, body) again, now to the other instance.
    const replayed = await send(b, init)
    expect(replayed.status).toBe(401)
    expect(challengeOf(replayed)).toMatch(/error="invalid_dpop_proof"/)
    expect(((await replayed.json()) as { code: string }).code).toBe('ERR_REPLAY')
    expect(runs.get('whoami')).toBe(2)
  })

  it('keeps a proof replay key in Redis until the nonce it carried goes stale, plus the clock skew', async () => {
    const alice = await caller()
    expect((await call(a, alice, toolCall('whoami'))).status).toBe(200) // fetches a nonce
    const used = nonce!
    const init = await request(alice, toolCall('whoami'))
    expect((await send(a, init)).status).toBe(200)
    const proof = (init.headers as Record<string, string>)['dpop']!
    const { jti, iat } = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()) as {
      jti: string
      iat: number
    }
    // The nonce's own window number (its first 8 bytes), 30 s windows: accepted until the end of
    // the next window. Without nonces the key would live until iat + 60 s + 5 s. Both ends keep
    // the 5 s skew, since Redis expires the key by its own clock, which may run ahead.
    const nonceEnd = (Number(Buffer.from(used, 'base64url').readBigUInt64BE(0)) + 2) * 30_000
    expect(nonceEnd).toBeLessThan((iat + 65) * 1000)
    expect(await expiryOf(`callproof:replay:dpop:${alice.key.jkt}:${jti}`)).toBe(
      Math.min(nonceEnd + 5000, (iat + 65) * 1000),
    )
  })

  it('refuses on B a per-call approval already used on A', async () => {
    const args = { path: 'report.txt', with: 'bob' }
    const message = toolCall('share_file', args)
    const approval = await caller({
      authorization_details: [
        {
          type: 'mcp_tool_call',
          resource: RESOURCE,
          tool: 'share_file',
          args: await argsDigest(args),
        },
      ],
    })
    const used = await call(a, approval, message)
    expect(used.status).toBe(200)
    expect(runs.get('share_file')).toBe(1)
    // Remembered until the approval token stops being accepted (exp + the default 5 s clock
    // tolerance), plus the 60 s margin for the store's own clock, not longer.
    const { jti, exp } = JSON.parse(
      Buffer.from(approval.token.split('.')[1]!, 'base64url').toString(),
    ) as { jti: string; exp: number }
    expect(await expiryOf(`callproof:replay:approval:${jti}`)).toBe((exp + 5) * 1000 + 60_000)

    // A fresh proof (so not a replay), the same approval token, the same call: on the other instance.
    const again = await call(b, approval, toolCall('share_file', args))
    expect(again.status).toBe(403)
    expect(challengeOf(again)).toMatch(/error="insufficient_authorization_details"/)
    expect(runs.get('share_file')).toBe(1)
  })

  it('serves a session opened on A on B for its caller only, and ends it everywhere', async () => {
    const key = await clientKey()
    const alice = await caller({}, key)
    const opened = await call(a, alice, initialize())
    expect(opened.status).toBe(200)
    const sessionId = opened.headers.get('mcp-session-id')
    expect(sessionId).toMatch(/^[\x21-\x7e]+$/)

    // Same caller (subject, client, key) with another token, on the other instance: served.
    const aliceAgain = await caller({}, key)
    const onB = await call(b, aliceAgain, toolCall('whoami'), { sessionId: sessionId! })
    expect(onB.status).toBe(200)
    expect(runs.get('whoami')).toBe(1)

    // Another caller with a valid token of its own: 404, as for an unknown session.
    for (const other of [await caller({ sub: 'bob' }), await caller()]) {
      const stolen = await call(b, other, toolCall('whoami'), { sessionId: sessionId! })
      expect(stolen.status).toBe(404)
    }
    const unknown = await call(b, alice, toolCall('whoami'), { sessionId: 'no-such-session' })
    expect(unknown.status).toBe(404)
    expect(runs.get('whoami')).toBe(1)

    // Ended on B: gone on A.
    const ended = await call(b, alice, undefined, { sessionId: sessionId!, method: 'DELETE' })
    expect(ended.status).toBe(200)
    const afterEnd = await call(a, alice, toolCall('whoami'), { sessionId: sessionId! })
    expect(afterEnd.status).toBe(404)
    expect(runs.get('whoami')).toBe(1)
  })

  it('answers 503 with Retry-After while Redis is down, runs nothing, and recovers by itself', async () => {
    const alice = await caller()
    expect((await call(a, alice, toolCall('whoami'))).status).toBe(200)
    expect(runs.get('whoami')).toBe(1)
    const key = await clientKey()
    const bob = await caller({ sub: 'bob' }, key)
    const opened = await call(a, bob, initialize())
    expect(opened.status).toBe(200)
    const sessionId = opened.headers.get('mcp-session-id')!

    await redis.kill()
    try {
      for (const instance of [a, b]) {
        const started = performance.now()
        const down = await call(instance, alice, toolCall('whoami'))
        expect(performance.now() - started).toBeLessThan(2_000)
        expect(down.status).toBe(503)
        expect(down.headers.get('retry-after')).toMatch(/^\d+$/)
        const inSession = await call(instance, bob, toolCall('whoami'), { sessionId })
        expect(inSession.status).toBe(503)
        const init = await call(instance, bob, initialize())
        expect(init.status).toBe(503)
      }
      expect(runs.get('whoami')).toBe(1)
    } finally {
      await redis.start()
    }

    // No restart of the instances: they reconnect by themselves.
    const deadline = Date.now() + 10_000
    let status = 0
    while (Date.now() < deadline) {
      status = (await call(b, alice, toolCall('whoami'))).status
      if (status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(status).toBe(200)
    expect(runs.get('whoami')).toBe(2)
  })
})

/** One drive process started by the example's own command line. */
interface DriveProcess {
  url: string
  close(): Promise<void>
}

const DRIVE_MAIN = fileURLToPath(new URL('../../../examples/drive/src/main.ts', import.meta.url))

async function startDriveProcess(
  redisUrl: string,
  secret: string,
  sdk: 'v1' | 'v2' = 'v1',
): Promise<DriveProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=@callproof/source',
      '--import',
      'tsx',
      DRIVE_MAIN,
      '--port',
      '0',
      '--issuer',
      issuer.issuer,
      '--resource',
      RESOURCE,
      '--redis',
      redisUrl,
      '--nonce',
      ...(sdk === 'v2' ? ['--sdk', 'v2'] : []),
    ],
    {
      cwd: fileURLToPath(new URL('../../../examples/drive/', import.meta.url)),
      env: { ...process.env, CALLPROOF_NONCE_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drive did not start: ${output}`)), 15_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /drive listening on (\S+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`drive exited with ${code}: ${output}`))
    })
  })
  return {
    url,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}

// The second process runs on SDK v2: a fleet half-way through its move from one SDK line to the
// other serves the same callers, sessions, nonces and approvals.
describe('the drive example, two processes sharing Redis (--redis --nonce --resource), on SDK v1 and v2', () => {
  let driveRedis: TestRedisServer
  let d1: DriveProcess
  let d2: DriveProcess
  let secret = ''
  const asInstance = (d: DriveProcess) => ({ url: d.url }) as Instance

  beforeAll(async () => {
    driveRedis = await startRedisServer()
    secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
    ;[d1, d2] = await Promise.all([
      startDriveProcess(driveRedis.url, secret),
      startDriveProcess(driveRedis.url, secret, 'v2'),
    ])
  }, 60_000)

  afterAll(async () => {
    await Promise.all([d1?.close(), d2?.close()])
    await driveRedis?.stop()
  })

  async function drive(
    d: DriveProcess,
    who: Caller,
    message: unknown,
    options: { sessionId?: string; method?: string } = {},
  ) {
    return call(asInstance(d), who, message, options)
  }

  async function sharedWith(d: DriveProcess, who: Caller, path: string): Promise<string[]> {
    const answer = await drive(d, who, toolCall('list_files'))
    expect(answer.status).toBe(200)
    const result = ((await answer.json()) as { result: { content: { text: string }[] } }).result
    const files = JSON.parse(result.content[0]!.text) as { path: string; sharedWith: string[] }[]
    return files.find((f) => f.path === path)?.sharedWith ?? []
  }

  it('demands a nonce (--nonce), and one process accepts the nonce the other handed out', async () => {
    nonce = undefined
    const alice = await caller()
    const refused = await send(asInstance(d1), await request(alice, toolCall('whoami')))
    expect(refused.status).toBe(401)
    expect(challengeOf(refused)).toMatch(/error="use_dpop_nonce"/)
    const fromD1 = refused.headers.get('dpop-nonce')
    expect(fromD1).toMatch(/^[A-Za-z0-9_-]{32}$/)
    // The same secret (CALLPROOF_NONCE_SECRET) in both processes: d1's nonce works on d2.
    nonce = fromD1!
    const ok = await send(asInstance(d2), await request(alice, toolCall('whoami')))
    expect(ok.status).toBe(200)
    expect(ok.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/)
  })

  it('refuses on one process a proof already used on the other', async () => {
    const alice = await caller()
    expect((await drive(d1, alice, toolCall('whoami'))).status).toBe(200) // fetches a nonce
    const init = await request(alice, toolCall('whoami'))
    expect((await send(asInstance(d1), init)).status).toBe(200)
    const replayed = await send(asInstance(d2), init)
    expect(replayed.status).toBe(401)
    expect(challengeOf(replayed)).toMatch(/error="invalid_dpop_proof"/)
  })

  it('refuses on one process a per-call approval used on the other', async () => {
    const args = { path: 'README.md', with: 'bob' }
    const approval = await caller({
      scope: 'drive:read drive:share',
      authorization_details: [
        {
          type: 'mcp_tool_call',
          resource: RESOURCE,
          tool: 'share_file',
          args: await argsDigest(args),
        },
      ],
    })
    expect((await drive(d1, approval, toolCall('share_file', args))).status).toBe(200)
    const again = await drive(d2, approval, toolCall('share_file', args))
    expect(again.status).toBe(403)
    expect(challengeOf(again)).toMatch(/error="insufficient_authorization_details"/)
    // The share did not happen on the second process (files live per process).
    expect(await sharedWith(d2, await caller(), 'README.md')).toEqual([])
    expect(await sharedWith(d1, await caller(), 'README.md')).toEqual(['bob'])
  })

  it('serves a session opened on one process on the other, for its caller only', async () => {
    const key = await clientKey()
    const alice = await caller({}, key)
    const opened = await drive(d1, alice, initialize())
    expect(opened.status).toBe(200)
    const sessionId = opened.headers.get('mcp-session-id')!
    expect(sessionId).toBeTruthy()
    const same = await drive(d2, await caller({}, key), toolCall('whoami'), { sessionId })
    expect(same.status).toBe(200)
    const bob = await drive(d2, await caller({ sub: 'bob' }), toolCall('whoami'), { sessionId })
    expect(bob.status).toBe(404)
  })

  it('a restarted process still refuses the proof and the approval it consumed before', async () => {
    const args = { path: 'README.md', with: 'carol' }
    const approval = await caller({
      authorization_details: [
        {
          type: 'mcp_tool_call',
          resource: RESOURCE,
          tool: 'share_file',
          args: await argsDigest(args),
        },
      ],
    })
    expect((await drive(d1, approval, toolCall('whoami'))).status).toBe(200) // fetches a nonce
    const proven = await request(approval, toolCall('share_file', args))
    expect((await send(asInstance(d1), proven)).status).toBe(200)

    await d1.close()
    d1 = await startDriveProcess(driveRedis.url, secret)

    const replayed = await send(asInstance(d1), proven)
    expect(replayed.status).toBe(401)
    expect(challengeOf(replayed)).toMatch(/error="invalid_dpop_proof"/)
    const again = await drive(d1, approval, toolCall('share_file', args))
    expect(again.status).toBe(403)
    expect(challengeOf(again)).toMatch(/error="insufficient_authorization_details"/)
    // The restarted process starts with fresh files: the refused share did not happen there.
    expect(await sharedWith(d1, await caller(), 'README.md')).toEqual([])
  })

  it('answers 503 with Retry-After while Redis is down (the write did not happen), then recovers', async () => {
    const alice = await caller({ scope: 'drive:read drive:write' })
    expect((await drive(d1, alice, toolCall('whoami'))).status).toBe(200)
    await driveRedis.kill()
    try {
      for (const d of [d1, d2]) {
        const down = await drive(
          d,
          alice,
          toolCall('write_file', { path: 'down.txt', content: 'x' }),
        )
        expect(down.status).toBe(503)
        expect(down.headers.get('retry-after')).toMatch(/^\d+$/)
      }
    } finally {
      await driveRedis.start()
    }
    const deadline = Date.now() + 10_000
    let listed: Response | undefined
    while (Date.now() < deadline) {
      listed = await drive(d1, alice, toolCall('list_files'))
      if (listed.status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(listed?.status).toBe(200)
    const text = ((await listed!.json()) as { result: { content: { text: string }[] } }).result
      .content[0]!.text
    expect(JSON.parse(text).map((f: { path: string }) => f.path)).not.toContain('down.txt')
  })
})
