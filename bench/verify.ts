/**
 * `npm run bench:verify`: the cost of the server's whole verification of one call (token, proof,
 * binding, replay, policy) against the raw cost of one ES256 signature verification with Web
 * Crypto, sequentially and at concurrency 16. The whole verification runs twice: with core's
 * default (the proof signature checked with Web Crypto, as on any runtime) and as
 * `@callproof/server` runs it on Node (checked with `node:crypto`, {@link nodeProofVerification}).
 * Prints a table and, last, the ratios (whole verifications per second ÷ raw ES256 verifications
 * per second; target ≥ 0.6).
 *
 * Proofs are signed before the timed loops: signing is the client's cost, not the server's. Each
 * call carries a fresh proof (new jti, so the replay store records every one) with a realistic
 * tools/call body; the access token is the same for every call, as it is for a real client, so
 * the verifier's token cache is warm after the first call.
 */
import os from 'node:os'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose'
import {
  MemoryReplayStore,
  bindingFor,
  createProof,
  createVerifier,
  evaluatePolicy,
  jwkThumbprint,
} from '@callproof/core'
import type { ProofSignatureCheck, ToolPolicy, VerifiedCall, Verifier } from '@callproof/core'
import { adaptiveProofVerification, nodeProofVerification } from '@callproof/server'

const RESOURCE = 'https://drive.example.com/mcp'
const ISSUER = 'https://as.example.com'
const CONCURRENCY = 16

// --- setup: an issuer, a client key, one token, a verifier --------------------------------------
const as = await generateKeyPair('ES256', { extractable: true })
const keys = createLocalJWKSet({
  keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k1', alg: 'ES256' }],
})
const client = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
  'sign',
  'verify',
])) as CryptoKeyPair
const jkt = await jwkThumbprint(await exportJWK(client.publicKey))
const now = Math.floor(Date.now() / 1000)
const token = await new SignJWT({
  client_id: 'bench-client',
  scope: 'drive:read drive:write',
  cnf: { jkt },
  acr: 'urn:callproof:acr:mfa',
  auth_time: now,
})
  .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
  .setIssuer(ISSUER)
  .setSubject('alice')
  .setAudience(RESOURCE)
  .setJti('bench-token')
  .setIssuedAt(now)
  .setExpirationTime(now + 3600)
  .sign(as.privateKey)

const policy: ToolPolicy = { scopes: ['drive:write'], acr: ['urn:callproof:acr:mfa'], maxAge: 3600 }
const verifierWith = (verifySignature?: ProofSignatureCheck): Verifier =>
  createVerifier({
    resource: RESOURCE,
    issuers: [ISSUER],
    keys,
    // One caller at full speed: its quotas must not be what is measured.
    replay: new MemoryReplayStore({
      maxEntries: 2_000_000,
      maxEntriesPerSubject: 2_000_000,
      maxEntriesPerClient: 2_000_000,
    }),
    ...(verifySignature !== undefined && { verifySignature }),
  })
const webVerifier = verifierWith()
const nodeVerifier = verifierWith(nodeProofVerification)
const autoVerifier = verifierWith(adaptiveProofVerification())

function message(i: number) {
  return {
    jsonrpc: '2.0',
    id: i,
    method: 'tools/call',
    params: {
      name: 'write_file',
      arguments: {
        path: `reports/2026/q4/summary-${i}.md`,
        content: `# Quarterly summary ${i}\n\n${'Revenue grew; costs held. '.repeat(12)}`,
        overwrite: true,
      },
    },
  }
}

type Request = { method: string; url: string; headers: Headers; message: unknown }

async function whole(verifier: Verifier, req: Request) {
  const call: VerifiedCall = await verifier.verify(req)
  const binding = call.binding as { name: string; args: string }
  const decision = evaluatePolicy(policy, {
    caller: call.caller,
    tool: binding.name,
    argsDigest: binding.args,
    resource: RESOURCE,
    now: Date.now(),
  })
  if (!decision.allow) throw decision.error
}

// --- pre-generate the requests (client cost, outside the timed loops) ---------------------------
async function makeRequest(i: number) {
  const msg = message(i)
  const proof = await createProof(client, {
    htm: 'POST',
    htu: RESOURCE,
    accessToken: token,
    mcp: await bindingFor(msg),
  })
  return {
    method: 'POST',
    url: RESOURCE,
    headers: new Headers({ authorization: `DPoP ${token}`, dpop: proof }),
    message: msg,
  }
}

async function makeRequests(n: number) {
  const out: Array<Awaited<ReturnType<typeof makeRequest>>> = []
  // Signed 64 at a time so that Web Crypto's thread pool works in parallel.
  for (let i = 0; i < n; i += 64) {
    const batch = Array.from({ length: Math.min(64, n - i) }, (_, j) => makeRequest(i + j))
    out.push(...(await Promise.all(batch)))
  }
  return out
}

// Raw: ES256 verify of a proof-sized JWS signing input, as jose does it (Web Crypto, IEEE P1363).
const rawInput = new TextEncoder().encode(
  (
    await createProof(client, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: token,
      mcp: await bindingFor(message(0)),
    })
  )
    .split('.')
    .slice(0, 2)
    .join('.'),
)
const rawSig = await crypto.subtle.sign(
  { name: 'ECDSA', hash: 'SHA-256' },
  client.privateKey,
  rawInput,
)
// The key is imported from its JWK, as a server imports a proof key (not the generated handle).
const rawKey = await crypto.subtle.importKey(
  'jwk',
  await exportJWK(client.publicKey),
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['verify'],
)
async function raw() {
  const ok = await crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    rawKey,
    rawSig,
    rawInput,
  )
  if (!ok) throw new Error('raw verify failed')
}

/** Runs `count` operations with `concurrency` workers; returns elapsed wall and CPU time (ms). */
async function run(
  op: () => Promise<void>,
  count: number,
  concurrency: number,
): Promise<{ wall: number; cpu: number }> {
  let started = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  async function worker() {
    while (started < count) {
      started++
      await op()
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  // CPU time of every thread of this process (main thread and Web Crypto's pool), so the
  // load other processes put on a shared machine does not count.
  return { wall, cpu: (cpu.user + cpu.system) / 1000 }
}

// Raw and whole are measured in alternating slices of equal work, so that the load of anything
// else on the machine falls on both alike and the ratio stays meaningful.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SLICE = Number(process.env.BENCH_SLICE ?? 400)
const signStart = performance.now()
const pool = await makeRequests(ROUNDS * SLICE * 6 + 900)
const signMs = performance.now() - signStart
let p = 0
const take = (): (typeof pool)[number] => pool[p++]!

const web = () => whole(webVerifier, take())
const node = () => whole(nodeVerifier, take())
const auto = () => whole(autoVerifier, take())
// Warm-up: JIT, the token cache, the key cache.
for (let i = 0; i < 300; i++) await web()
for (let i = 0; i < 300; i++) await node()
for (let i = 0; i < 300; i++) await auto()
for (let i = 0; i < 300; i++) await raw()

type Cell = { wall: number; cpu: number }
const cell = (): Cell => ({ wall: 0, cpu: 0 })
const cells = () => ({ seq: cell(), conc: cell() })
const totals = { raw: cells(), web: cells(), node: cells(), auto: cells() }
const add = (t: Cell, m: Cell) => {
  t.wall += m.wall
  t.cpu += m.cpu
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, op] of [
    ['raw', raw],
    ['web', web],
    ['node', node],
    ['auto', auto],
  ] as const) {
    add(totals[name].seq, await run(op, SLICE, 1))
    add(totals[name].conc, await run(op, SLICE, CONCURRENCY))
  }
}
const ops = ROUNDS * SLICE
const perSecond = (c: Cell) => ops / (c.wall / 1000)
const cpuMicros = (c: Cell) => (c.cpu * 1000) / ops
/** Whole verifications per second ÷ raw ones: sequential, concurrency 16, and by CPU time. */
const ratios = (t: { seq: Cell; conc: Cell }) => ({
  seq: perSecond(t.seq) / perSecond(totals.raw.seq),
  conc: perSecond(t.conc) / perSecond(totals.raw.conc),
  cpu: cpuMicros(totals.raw.conc) / cpuMicros(t.conc),
})

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
console.log('')
console.log(
  `node ${process.version}, ${os.availableParallelism()} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}; ` +
    `${ROUNDS} rounds × ${SLICE} operations per cell, interleaved; ` +
    `${pool.length} proofs pre-signed in ${Math.round(signMs)} ms (not timed)`,
)
const row = (name: string, ...cells: string[]) =>
  console.log(`${name.padEnd(32)}${cells.map((c, i) => c.padStart(i === 0 ? 14 : 18)).join('')}`)
row('operation', 'sequential/s', `concurrency ${CONCURRENCY}/s`, `CPU µs/op (c${CONCURRENCY})`)
const lines = [
  ['raw ES256 verify (Web Crypto)', totals.raw],
  ['whole call, Web Crypto (core)', totals.web],
  ['whole call, node:crypto', totals.node],
  ['whole call, auto (server default)', totals.auto],
] as const
for (const [name, t] of lines) {
  row(name, fmt(perSecond(t.seq)), fmt(perSecond(t.conc)), cpuMicros(t.conc).toFixed(0))
}
for (const [name, t] of lines.slice(1)) {
  const r = ratios(t)
  row(`ratio ${name.slice(12)} / raw`, r.seq.toFixed(2), r.conc.toFixed(2), r.cpu.toFixed(2))
}
const summary = (t: { seq: Cell; conc: Cell }) => {
  const r = ratios(t)
  return `sequential ${r.seq.toFixed(2)}, concurrency ${CONCURRENCY} ${r.conc.toFixed(2)}, by CPU time ${r.cpu.toFixed(2)}`
}
console.log('')
console.log(
  `ratio (verified calls/s ÷ raw ES256 verifies/s; target ≥ 0.6): server default (auto) ${summary(totals.auto)}; node:crypto ${summary(totals.node)}; core (Web Crypto) ${summary(totals.web)}`,
)
