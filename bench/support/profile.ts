/**
 * Summarises a V8 CPU profile (`.cpuprofile`, as written by `node --cpu-prof`) of the bench
 * server: self time by component (which package's code the CPU was in) and the inclusive time
 * of the functions that matter for callproof's cost, as a share of the non-idle time.
 *
 *   node bench/support/profile.ts <file.cpuprofile>
 *
 * Web Crypto signature work runs on libuv's thread pool, not on the main thread, so it shows up
 * here only as the JavaScript around it (jose's and core's calls into `crypto.subtle`); its own
 * cost is visible as server CPU time per call in the benchmark table.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const file = process.argv[2]
if (file === undefined) {
  console.error('usage: node bench/support/profile.ts <file.cpuprofile>')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))

/** Which component a frame belongs to, from its script URL. */
function component(node: ProfileNode): string {
  const { url, functionName } = node.callFrame
  if (url === '') {
    if (functionName.startsWith('(')) return functionName // (idle) (program) (garbage collector)
    return 'native (V8 builtins, C++)'
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg !== null) return pkg[1]!
  const own = /\/(packages|examples)\/([^/]+)\/src\/(.+)$/.exec(url)
  if (own !== null) return `callproof ${own[2]}/${own[3]}`
  if (url.startsWith('node:')) {
    const mod = /^node:(internal\/)?([^/]+)/.exec(url)
    return `node:${mod?.[2] ?? url}`
  }
  if (url.includes('/bench/')) return 'bench harness'
  return url
}

const totals = new Map<string, number>()
let all = 0
let idle = 0
for (const [id, us] of self) {
  const c = component(byId.get(id)!)
  all += us
  if (c === '(idle)') idle += us
  totals.set(c, (totals.get(c) ?? 0) + us)
}
const busy = all - idle
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`
console.log(
  `${file}: ${(all / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (not idle)`,
)
console.log('\nself time by component (share of busy time)')
for (const [c, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  if (c === '(idle)' || us / busy < 0.005) continue
  console.log(`  ${pct(us)}  ${c}`)
}

// Inclusive time: a function's own samples plus everything it called (synchronously: an await
// ends the stack, so async functions count until their first await and after each resumption).
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const FOCUS: [string, RegExp, RegExp][] = [
  ['core verifier.verify (token+proof+replay)', /verifier\.ts$/, /^verify$/],
  ['core bindingFor (JCS + SHA-256 of args)', /binding\.ts$/, /^bindingFor$/],
  ['core canonical JSON (JCS)', /binding\.ts$|canonicalize/, /canonical|serialize/i],
  ['core proof verification', /proof-verify\.ts$/, /^verifyProof(With)?$/],
  ['core token verification', /token\.ts$/, /^verifyAccessToken$/],
  ['core evaluatePolicy', /policy\.ts$/, /^evaluatePolicy$/],
  ['server pipeline (all sync parts)', /server\/src\/pipeline\.ts$/, /.*/],
  ['server SDK seam execute (pooled McpServer)', /server\/src\/sdk\/v1\.ts$/, /^execute$/],
  ['server readJsonBody', /body\.ts$/, /^readJsonBody$/],
  ['server listedPolicy (tools/list only)', /tools\.ts$/, /^listedPolicy$/],
  [
    'bench plainDriveServer (McpServer per request)',
    /bench\/support\/plain\.ts$/,
    /^plainDriveServer$/,
  ],
  ['Ajv (SDK validator, built per McpServer)', /node_modules\/ajv/, /.*/],
  [
    'jose jwtVerify / compactVerify',
    /node_modules\/jose\//,
    /^(jwtVerify|compactVerify|flattenedVerify)$/,
  ],
  ['jose (all)', /node_modules\/jose\//, /.*/],
  ['SDK McpServer.registerTool', /modelcontextprotocol/, /^registerTool$/],
  ['SDK transport handleRequest', /modelcontextprotocol/, /^handleRequest|^handlePostRequest$/],
  ['SDK (all)', /modelcontextprotocol/, /.*/],
  ['zod (all)', /node_modules\/zod\//, /.*/],
  ['hono + @hono/node-server', /node_modules\/(hono|@hono)\//, /.*/],
  ['JSON.parse / JSON.stringify', /^$/, /^(parse|stringify)$/],
]
console.log('\ninclusive time (share of busy time; a function counted once per sample)')
for (const [label, url, name] of FOCUS) {
  let us = 0
  profile.samples.forEach((id, i) => {
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame
      if (url.test(f.url) && name.test(f.functionName)) {
        us += profile.timeDeltas[i] ?? 0
        break
      }
    }
  })
  console.log(`  ${pct(us)}  ${label}`)
}
