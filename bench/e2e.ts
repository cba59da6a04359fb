/**
 * `npm run bench`: one drive tool call (`read_file`) end to end — the real MCP SDK client, real
 * HTTP on 127.0.0.1, the real SDK server behind Hono — as five variants measured in one run:
 *
 *   (a) no authentication; (b) a bearer JWT checked with jose (the baseline); (c) callproof with
 *   the memory replay store; (d) callproof with a real redis-server; (e) callproof with nonces.
 *
 * The servers run in one child process (bench/support/server.ts), the clients in this one: the
 * two processes share the machine's cores, so every client-side cost (signing a proof per call)
 * is part of the number, as it is for a real deployment. Every variant serves the SDK in
 * stateless mode (a fresh server and transport per request, JSON responses) and is called through
 * CONNECTIONS clients with CONCURRENCY calls in flight. Variants run in ROUNDS slices of SLICE
 * calls, in a rotating order, so drift on the machine falls on all of them alike.
 *
 * Prints calls/s and p50/p99 latency per variant and the ratios to (b), then a second table: the
 * server alone, with requests prepared (callproof's signed) before the timed window, against
 * the MCP SDK's own idiomatic stateful server without authentication (what a user would pick
 * instead; bench/support/stateful.ts), and the same pair on the MCP SDK v2 line: the SDK v2's own
 * stateful server (bench/support/stateful-v2.ts) against callproof on `@callproof/server/v2`, both
 * serving the same 2025-11-25 client. The last line is that table's ratio (p)/(s). Environment: BENCH_ROUNDS, BENCH_SLICE, BENCH_WARMUP,
 * BENCH_CONCURRENCY, BENCH_CONNECTIONS, BENCH_VARIANTS (comma-separated short names: none,
 * bearer, memory, redis, nonce), BENCH_PRESIGNED=0 (skip the second table), BENCH_PROFILE (a directory: the server process writes a V8 CPU
 * profile there; summarise it with `node bench/support/profile.ts <file>`).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { startRedisServer } from '../packages/server/test/support/redis-server.js'
import type { TestRedisServer } from '../packages/server/test/support/redis-server.js'
import { connectCaller, createBenchIssuer } from './support/callers.js'
import type { RequestCounter } from './support/callers.js'
import type { ServerConfig, ServerReady } from './support/server.js'
import { callproofCaller, plainCaller, sendPrepared } from './support/presigned.js'
import type { PreparedCaller } from './support/presigned.js'
import { LABELS, VARIANTS } from './support/variants.js'
import type { VariantName } from './support/variants.js'

const int = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer`)
  return value
}
const ROUNDS = int('BENCH_ROUNDS', 10)
const SLICE = int('BENCH_SLICE', 300)
const WARMUP = int('BENCH_WARMUP', 400)
const CONCURRENCY = int('BENCH_CONCURRENCY', 16)
const CONNECTIONS = int('BENCH_CONNECTIONS', 4)
const PROFILE = process.env['BENCH_PROFILE']
const variants: VariantName[] = (process.env['BENCH_VARIANTS'] ?? VARIANTS.join(','))
  .split(',')
  .map((name) => {
    if (!(VARIANTS as readonly string[]).includes(name)) throw new Error(`unknown variant ${name}`)
    return name as VariantName
  })

const TOOL = { name: 'read_file', arguments: { path: 'notes/todo.txt' } }
const started = performance.now()

// --- the pieces: issuer key, Redis, the server process -------------------------------------
const bench = await createBenchIssuer()
let redis: TestRedisServer | undefined
if (variants.includes('redis')) redis = await startRedisServer()

const PRESIGNED = process.env['BENCH_PRESIGNED'] !== '0'
const config: ServerConfig = {
  issuerJwk: bench.publicJwk,
  variants,
  presigned: PRESIGNED,
  ...(redis !== undefined ? { redisUrl: redis.url } : {}),
}
const serverPath = fileURLToPath(new URL('./support/server.ts', import.meta.url))
const child = spawn(
  process.execPath,
  [
    ...process.execArgv,
    ...(PROFILE !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []),
    serverPath,
  ],
  {
    env: { ...process.env, BENCH_SERVER_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
)
const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

async function cleanup(): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM')
    await exited
  }
  await redis?.stop()
}

try {
  const ready = await new Promise<ServerReady>((resolve, reject) => {
    let out = ''
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split('\n').find((l) => l.startsWith('READY '))
      if (line !== undefined) {
        child.stdout?.off('data', onData)
        resolve(JSON.parse(line.slice('READY '.length)) as ServerReady)
      }
    }
    child.stdout?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`bench server exited early (${code}): ${out}`)))
  })

  // The checks are really on: a call without credentials must be refused by (b)–(e).
  for (const variant of variants) {
    if (variant === 'none') continue
    const response = await fetch(ready.endpoints[variant]!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: TOOL }),
    })
    await response.body?.cancel()
    if (response.status !== 401) {
      throw new Error(`${variant}: a call without credentials got ${response.status}, not 401`)
    }
  }

  // --- clients: CONNECTIONS SDK clients per variant, each with its own key and token --------
  const clients = new Map<VariantName, Client[]>()
  const counters = new Map<VariantName, RequestCounter>()
  for (const variant of variants) {
    const url = ready.endpoints[variant]
    if (url === undefined) throw new Error(`the server did not start variant ${variant}`)
    const list: Client[] = []
    const counter = { requests: 0, refused: 0 }
    counters.set(variant, counter)
    for (let i = 0; i < CONNECTIONS; i++) {
      list.push(await connectCaller(variant, url, ready.issuer, bench, i, counter))
    }
    clients.set(variant, list)
  }

  // CPU time per call, on each side: unlike calls/s, it hardly moves when other processes load
  // the machine, so it is the number to compare the variants' costs by. /proc/<pid>/stat counts
  // every thread of the server process (Web Crypto runs on libuv's thread pool).
  const ticks = 100 // USER_HZ on Linux
  const serverCpuMs = () => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks
  }
  const clientCpuMs = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  const redisCpuMs = async () => {
    if (redis === undefined) return 0
    const info = await redis.command('INFO', 'cpu')
    const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0)
    return (get('used_cpu_user') + get('used_cpu_sys')) * 1000
  }

  /** CONCURRENCY workers share `count` calls over the variant's connections. */
  async function slice(variant: VariantName, count: number, latencies?: number[]) {
    const list = clients.get(variant)!
    let next = 0
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, w) => {
        const client = list[w % list.length]!
        while (next < count) {
          next++
          const s = performance.now()
          const result = await client.callTool(TOOL)
          const ms = performance.now() - s
          if (result.isError === true) {
            throw new Error(`${variant}: read_file failed: ${JSON.stringify(result.content)}`)
          }
          latencies?.push(ms)
        }
      }),
    )
    return performance.now() - t0
  }

  // Warm-up: JIT, key caches, keep-alive connections, Redis connection.
  for (const variant of variants) await slice(variant, WARMUP)

  const stats = new Map(
    variants.map((v) => [
      v,
      { ms: 0, latencies: [] as number[], rounds: [] as number[], server: 0, client: 0, redis: 0 },
    ]),
  )
  const loadBefore = loadavg()[0]!
  const countsBefore = new Map(variants.map((v) => [v, { ...counters.get(v)! }]))
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order every round: no variant always runs first, or always after another.
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!)
    for (const variant of order) {
      const s = stats.get(variant)!
      const onRedis = variant === 'redis'
      const redis0 = onRedis ? await redisCpuMs() : 0
      const [server0, client0] = [serverCpuMs(), clientCpuMs()]
      const ms = await slice(variant, SLICE, s.latencies)
      s.server += serverCpuMs() - server0
      s.client += clientCpuMs() - client0
      if (onRedis) s.redis += (await redisCpuMs()) - redis0
      s.ms += ms
      s.rounds.push(SLICE / (ms / 1000))
    }
  }
  for (const list of clients.values()) await Promise.all(list.map((c) => c.close()))

  // --- the table -------------------------------------------------------------------------------
  const quantile = (sorted: number[], q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
  const rows = new Map(
    variants.map((v) => {
      const s = stats.get(v)!
      const sorted = [...s.latencies].sort((a, b) => a - b)
      return [
        v,
        {
          calls: sorted.length,
          rate: sorted.length / (s.ms / 1000),
          p50: quantile(sorted, 0.5),
          p99: quantile(sorted, 0.99),
          min: Math.min(...s.rounds),
          max: Math.max(...s.rounds),
          server: (1000 * s.server) / sorted.length,
          client: (1000 * s.client) / sorted.length,
          redis: (1000 * s.redis) / sorted.length,
        },
      ]
    }),
  )
  const base = rows.get('bearer')
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?'
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const cols = [24, 6, 9, 13, 8, 8, 9, 9, 10, 10, 8]
  // Calls per CPU-second relative to (b): the throughput ratio a machine dedicated to this one
  // workload would see. Wall-clock calls/s on a shared 2-core machine drifts with everything
  // else that runs; CPU time per call hardly does.
  const cpuOf = (r: { server: number; client: number; redis: number }) =>
    r.server + r.client + r.redis
  const line = (cells: string[]) =>
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(cols[i]!) : c.padStart(cols[i]!))).join(''))

  const loadAfter = loadavg()[0]!
  console.log('')
  console.log(
    `${availableParallelism()} CPUs (${cpu}), node ${process.version}; client and server processes share them`,
  )
  console.log(
    `read_file over MCP Streamable HTTP (SDK stateless, JSON responses) on 127.0.0.1; ` +
      `${CONNECTIONS} connections, ${CONCURRENCY} calls in flight; ${ROUNDS} rounds × ${SLICE} calls ` +
      `per variant, rotating order, after ${WARMUP} warm-up calls each; ` +
      `load average ${loadBefore.toFixed(1)} before the rounds, ${loadAfter.toFixed(1)} after`,
  )
  line([
    'variant',
    'calls',
    'calls/s',
    'rounds',
    'p50 ms',
    'p99 ms',
    'tput/(b)',
    'p50/(b)',
    'server µs',
    'client µs',
    'CPU/(b)',
  ])
  for (const v of variants) {
    const row = rows.get(v)!
    line([
      LABELS[v],
      String(row.calls),
      fmt(row.rate),
      `${fmt(row.min)}-${fmt(row.max)}`,
      row.p50.toFixed(2),
      row.p99.toFixed(2),
      base !== undefined ? (row.rate / base.rate).toFixed(2) : '-',
      base !== undefined ? (row.p50 / base.p50).toFixed(2) : '-',
      fmt(row.server) + (row.redis > 0 ? `+${fmt(row.redis)}` : ''),
      fmt(row.client),
      base !== undefined ? (cpuOf(base) / cpuOf(row)).toFixed(2) : '-',
    ])
  }
  console.log(
    'rounds: slowest-fastest round in calls/s. server/client µs: CPU time per call of the ' +
      'server process (all threads; +redis-server for (d)) and of the client process; CPU/(b): ' +
      "(b)'s CPU time per call ÷ this variant's (calls per CPU-second relative to (b))",
  )
  console.log(
    'HTTP requests per measured call: ' +
      variants
        .map((v) => {
          const [now, then] = [counters.get(v)!, countsBefore.get(v)!]
          const calls = rows.get(v)!.calls
          return `${v} ${((now.requests - then.requests) / calls).toFixed(3)} (${now.refused - then.refused} × 401)`
        })
        .join(', '),
  )
  console.log('')
  const memory = rows.get('memory')
  const redisRow = rows.get('redis')
  if (memory !== undefined && redisRow !== undefined) {
    console.log(
      `(d)/(c) throughput: ${(redisRow.rate / memory.rate).toFixed(2)} (target ≥ 0.80); ` +
        `p50 (c)/(b): ${base !== undefined ? (memory.p50 / base.p50).toFixed(2) : '-'} (target ≤ 1.15)`,
    )
  }
  if (memory !== undefined && base !== undefined) {
    console.log(`(c)/(b) throughput: ${(memory.rate / base.rate).toFixed(2)}`)
  }

  // --- the second table: the server alone, against the server a user would pick instead ------
  if (ready.presigned !== undefined) {
    const targets = [
      { name: 'sdk', label: '(s) MCP SDK, stateful, no auth', url: ready.presigned.sdk },
      {
        name: 'callproof',
        label: '(p) callproof, memory, sessions',
        url: ready.presigned.callproof,
      },
      { name: 'sdkV2', label: '(s2) MCP SDK v2, stateful, no auth', url: ready.presigned.sdkV2 },
      {
        name: 'callproofV2',
        label: '(p2) callproof on SDK v2, sessions',
        url: ready.presigned.callproofV2,
      },
    ] as const
    const callers = new Map<string, PreparedCaller[]>()
    for (const target of targets) {
      const list: PreparedCaller[] = []
      for (let i = 0; i < CONNECTIONS; i++) {
        list.push(
          target.name === 'sdk' || target.name === 'sdkV2'
            ? await plainCaller(target.url, TOOL)
            : await callproofCaller(target.url, ready.issuer, bench, i, TOOL),
        )
      }
      callers.set(target.name, list)
    }
    /** SLICE calls spread over the target's sessions, prepared before the clock starts. */
    const prepareSlice = async (name: string, count: number) => {
      const list = callers.get(name)!
      const parts = await Promise.all(
        list.map((c, i) =>
          c.prepare(Math.floor(count / list.length) + (i < count % list.length ? 1 : 0)),
        ),
      )
      // Interleave the sessions, as concurrent clients would.
      const out = []
      for (let i = 0; out.length < count; i++)
        for (const part of parts) if (i < part.length) out.push(part[i]!)
      return out
    }
    for (const target of targets) {
      await sendPrepared(
        target.url,
        await prepareSlice(target.name, WARMUP),
        CONCURRENCY,
        target.label,
      )
    }
    const second = new Map(
      targets.map((t) => [t.name, { ms: 0, latencies: [] as number[], server: 0 }]),
    )
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? targets : [...targets].reverse()
      for (const target of order) {
        const requests = await prepareSlice(target.name, SLICE)
        const s = second.get(target.name)!
        const server0 = serverCpuMs()
        const { ms, latencies } = await sendPrepared(
          target.url,
          requests,
          CONCURRENCY,
          target.label,
        )
        s.server += serverCpuMs() - server0
        s.ms += ms
        s.latencies.push(...latencies)
      }
    }
    const summary = (name: (typeof targets)[number]['name']) => {
      const s = second.get(name)!
      const sorted = [...s.latencies].sort((a, b) => a - b)
      return {
        calls: sorted.length,
        rate: sorted.length / (s.ms / 1000),
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
        server: (1000 * s.server) / sorted.length,
      }
    }
    const sdk = summary('sdk')
    const sdkV2 = summary('sdkV2')
    /** The baseline of a row: the SDK server of its own line. */
    const baselineOf = (name: (typeof targets)[number]['name']) =>
      name === 'sdkV2' || name === 'callproofV2' ? sdkV2 : sdk
    console.log('')
    console.log(
      `the server alone: read_file with requests prepared (and, for callproof, signed) before the ` +
        `timed window and sent with plain fetch; ${CONNECTIONS} sessions, ${CONCURRENCY} in flight, ` +
        `${ROUNDS} rounds × ${SLICE} calls, alternating order, after ${WARMUP} warm-up calls each`,
    )
    const cols2 = [34, 7, 9, 8, 8, 10, 11, 10]
    const line2 = (cells: string[]) =>
      console.log(
        cells.map((c, i) => (i === 0 ? c.padEnd(cols2[i]!) : c.padStart(cols2[i]!))).join(''),
      )
    line2(['server', 'calls', 'calls/s', 'p50 ms', 'p99 ms', 'tput/(s)', 'server µs', '+µs/(s)'])
    for (const target of targets) {
      const row = summary(target.name)
      const base = baselineOf(target.name)
      line2([
        target.label,
        String(row.calls),
        fmt(row.rate),
        row.p50.toFixed(2),
        row.p99.toFixed(2),
        (row.rate / base.rate).toFixed(2),
        fmt(row.server),
        fmt(row.server - base.server),
      ])
    }
    console.log(
      'server µs: CPU time per call of the server process (all threads); tput/(s) and +µs/(s): ' +
        'against the SDK server of the same line ((s) for v1, (s2) for v2)',
    )
    console.log(`total run time ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const ownV2 = summary('callproofV2')
    console.log(
      `SDK v2: server CPU per call (p2) − (s2): ${fmt(ownV2.server - sdkV2.server)} µs (target ≤ 150); ` +
        `(p2)/(s2) throughput: ${(ownV2.rate / sdkV2.rate).toFixed(2)} (target ≥ 0.70)`,
    )
    const own = summary('callproof')
    console.log(
      `server CPU per call (p) − (s): ${fmt(own.server - sdk.server)} µs (target ≤ 150); ` +
        `(p)/(s) throughput, pre-signed, ${CONCURRENCY} in flight: ${(own.rate / sdk.rate).toFixed(2)} (target ≥ 0.70)`,
    )
  } else {
    console.log(`total run time ${((performance.now() - started) / 1000).toFixed(1)} s`)
  }
} finally {
  await cleanup()
}
