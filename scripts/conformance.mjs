// `npm run conformance`: runs the MCP conformance suite's client auth scenarios
// (@modelcontextprotocol/conformance, `client`) against packages/client/conformance/client.mjs
// under Node ≥ 22 (the suite needs it): the running Node when it is 22 or later, else
// Node 22 from the registry's node-<platform>-<arch>@22 package, installed once into a cache
// directory by scripts/with-node.mjs. Prints one line per scenario and fails on any failed check or
// warning, except in the scenarios EXPECTED_FAILURES names with the reason (which fail the run once
// they pass, so that the entry goes).
//
// Every client auth scenario the suite lists (`conformance list`, the client scenarios named
// `auth/…`): its `auth` suite (the 2025-11-25 revision), its `backcompat` suite (the 2025-03-26
// revision's discovery, which the client does with `legacyDiscovery: true`) and its `extensions`
// suite (client credentials, enterprise-managed authorization, workload identity federation,
// DPoP) run in parallel; the listed auth scenarios no suite ran (the 2026-07-28 revision's, which
// its `draft` suite mixes with non-auth ones) run one by one. 33 scenarios, counted, so a run
// that silently covered fewer fails. Then the client scenarios of revision 2026-07-28 that are not
// auth scenarios (stateless requests, SEP-2243 headers, Multi Round-Trip Requests), one by one.
// The conformance client runs on SDK v2 (@callproof/client/v2; CALLPROOF_CONFORMANCE_SDK=v1 for v1).
//
//   npm run conformance                      every auth scenario
//   npm run conformance -- --scenario auth/dpop
//
// The suite is fetched by npx (never added to package.json). Results land in a temporary
// directory, not in the repository.
import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { root } from './ensure.mjs'
import { nodeBin } from './with-node.mjs'

const SUITE = '@modelcontextprotocol/conformance@0.2.0-alpha.12'

const MIN_MAJOR = 22
let node = process.execPath
if (Number(process.versions.node.split('.')[0]) < MIN_MAJOR) {
  try {
    node = join(nodeBin(MIN_MAJOR), 'node')
  } catch (error) {
    console.error(`callproof: the conformance suite needs Node ≥ ${MIN_MAJOR}: ${error.message}`)
    process.exit(1)
  }
}
const bin = dirname(node)
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
const clientScript = join(root, 'packages', 'client', 'conformance', 'client.mjs')
// Sources through the @callproof/source condition: no build step needed to run the suite.
const command = `${node} --conditions=@callproof/source --import ${tsx} ${clientScript}`

const SUITES = ['auth', 'backcompat', 'extensions']
/** The client auth scenarios SUITE's version lists. */
const EXPECTED_SCENARIOS = 33
/**
 * Scenarios known to fail, each with why: reported as XFAIL and not failing the run; one that
 * passes is reported as XPASS and fails the run, so the entry is removed as soon as the work lands.
 */
/** @type {Map<string, string>} */
const EXPECTED_FAILURES = new Map([])
/** The client scenarios of revision 2026-07-28 that are not auth scenarios. */
const REVISION_2026_07_28 = [
  'tools_call',
  'request-metadata',
  'http-standard-headers',
  'http-custom-headers',
  'http-invalid-tool-headers',
  'sep-2322-client-request-state',
  'json-schema-ref-no-deref',
  'json-schema-2020-12-preservation',
]

const extra = process.argv.slice(2)
const single = extra.includes('--scenario')
const work = mkdtempSync(join(tmpdir(), 'callproof-conformance-'))
console.error(`callproof: conformance (${SUITE}) under Node ${version} in ${work}`)

function suite(args) {
  const r = spawnSync('npx', ['-y', SUITE, ...args], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    maxBuffer: 256 * 1024 * 1024,
  })
  if (r.error) throw r.error
  return { status: r.status, out: `${r.stdout ?? ''}\n${r.stderr ?? ''}` }
}

/** The client scenarios named auth/… that `list` prints ("  - auth/dpop [extension]"). */
function listedAuthScenarios() {
  const { out } = suite(['list'])
  const clients = out.slice(out.indexOf('Client scenarios'))
  return [...clients.matchAll(/^\s+-\s+(auth\/\S+)/gm)].map((m) => m[1])
}

const listed = single ? [] : listedAuthScenarios()
/** @type {Array<{ scenario: string, passed: number, failed: number, bad: boolean }>} */
const rows = []
let suiteFailed = false
/** Runs one selection (`--suite x` or `--scenario y`) and records its scenarios in `rows`. */
function run(selection) {
  const { status, out } = suite(['client', '--command', command, ...selection])
  const before = rows.length
  // Suite summary lines: "✓ auth/metadata-default: 18 passed, 0 failed[, 2 warnings]". A suite
  // fails on any failed check or warning, and so does each of its scenarios here.
  for (const m of out.matchAll(
    /^[✓✗]\s+(\S+):\s+(\d+) passed, (\d+) failed(?:, (\d+) warnings)?/gmu,
  )) {
    const bad = Number(m[3]) + Number(m[4] ?? 0)
    rows.push({ scenario: m[1], passed: Number(m[2]), failed: Number(m[3]), bad: bad > 0 })
  }
  // A single scenario: "Passed: 12/12, 0 failed, 0 warnings"; it also fails when the client
  // timed out or exited unexpectedly, which only the exit status says.
  const one = /Passed:\s+(\d+)\/(\d+), (\d+) failed/.exec(out)
  if (rows.length === before && one && selection[0] === '--scenario') {
    rows.push({
      scenario: selection[1],
      passed: Number(one[1]),
      failed: Number(one[3]),
      bad: status !== 0,
    })
  }
  if (rows.length === before) {
    suiteFailed = true
    console.log(`no results for ${selection.join(' ')}; the suite printed:\n${out.slice(-4000)}`)
  } else if (status !== 0) {
    // Show the failed checks and the client's stderr for whatever failed.
    for (const line of out.split('\n')) {
      if (/FAILURE|callproof conformance client:|^\s+- /.test(line))
        console.log(`    ${line.trim()}`)
    }
  }
}

if (single) {
  run(extra)
} else {
  for (const name of SUITES) run(['--suite', name, ...extra])
  // The listed auth scenarios none of the suites ran, one by one.
  for (const scenario of listed.filter((x) => !rows.some((row) => row.scenario === x))) {
    run(['--scenario', scenario, ...extra])
  }
  for (const scenario of REVISION_2026_07_28) run(['--scenario', scenario, ...extra])
}

let unexpected = 0
for (const { scenario, passed, failed, bad } of rows) {
  const known = EXPECTED_FAILURES.get(scenario)
  const verdict = bad ? (known ? 'XFAIL' : 'FAIL') : known ? 'XPASS' : 'PASS'
  if (verdict === 'FAIL' || verdict === 'XPASS') unexpected++
  const note =
    verdict === 'XFAIL'
      ? ` (expected: ${known})`
      : verdict === 'XPASS'
        ? ' (passes now: remove it from EXPECTED_FAILURES)'
        : ''
  console.log(
    `${verdict.padEnd(5)} ${scenario.padEnd(44)} ${passed} passed, ${failed} failed${note}`,
  )
}
const failedScenarios = rows.filter((x) => x.bad).length
const expected = rows.filter((x) => x.bad && EXPECTED_FAILURES.has(x.scenario)).length
console.log(
  `\nconformance: ${rows.length} scenarios, ${rows.length - failedScenarios} passed, ${failedScenarios} failed${expected > 0 ? ` (${expected} expected)` : ''}`,
)
const authRows = rows.filter((x) => x.scenario.startsWith('auth/')).length
const incomplete =
  !single &&
  (authRows !== EXPECTED_SCENARIOS ||
    listed.length !== authRows ||
    rows.length !== authRows + REVISION_2026_07_28.length)
if (incomplete) {
  console.log(
    `conformance: expected ${EXPECTED_SCENARIOS} auth scenarios (${listed.length} listed) and ${REVISION_2026_07_28.length} others, ran ${authRows} and ${rows.length - authRows}`,
  )
}
process.exit(!suiteFailed && !incomplete && unexpected === 0 && rows.length > 0 ? 0 : 1)
