// `npm run pack:install` (after `npm run build`): the packages as a user outside this repository
// gets them. Packs every published package, checks what each tarball holds, installs the tarballs
// into a fresh project in the system's temp directory (their other dependencies from the npm
// registry), then runs there what the README shows: its server and client snippets, copied out of
// README.md with the dependencies it names, against `callproof dev --resource …` from the
// installed cli, and `callproof --help` and `callproof demo --json`. One line per check, then
// `pack-install: N passed, N failed`; exit 1 on a failure. The temp directory and every process
// started here are removed at the end, whatever happened.
import { spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/** The published packages: the cli depends on the three examples (the demo's servers). */
export const PUBLISHED = [
  'packages/core',
  'packages/server',
  'packages/client',
  'packages/dev-auth-server',
  'packages/cli',
  'examples/drive',
  'examples/insecure-baseline',
  'examples/mail',
]

/** What no tarball may hold: tests, build state, configuration of this repository. */
const UNWANTED = [
  /(^|\/)test\//,
  /\.test\.[cm]?[jt]s$/,
  /\.tsbuildinfo$/,
  /(^|\/)tsconfig[^/]*\.json$/,
  /(^|\/)vitest\.config\./,
  /(^|\/)node_modules\//,
]

/** Child output in a message: one line, no control characters, bounded. */
export function clip(text, max = 300) {
  // Control characters (C0, DEL, C1) could move the cursor or recolour the terminal.
  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u001f\u007f-\u009f]+/g
  const flat = String(text).replace(controls, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

/**
 * The body of every fenced block with `lang` in the README section whose heading is `heading`
 * (up to the next heading of the same or a higher level).
 */
export function sectionBlocks(markdown, heading, lang) {
  const lines = markdown.split('\n')
  // By its start: "## A server in 30 lines" may count other lines tomorrow.
  const start = lines.findIndex((line) => line.trim().startsWith(heading))
  if (start < 0) throw new Error(`README has no section "${heading}"`)
  const level = heading.match(/^#+/)[0].length
  const blocks = []
  let current
  for (const line of lines.slice(start + 1)) {
    if (current === undefined && new RegExp(`^#{1,${level}} `).test(line)) break
    if (current === undefined && line.startsWith('```')) {
      current = line.slice(3).trim() === lang ? [] : null
    } else if (current !== undefined && line.startsWith('```')) {
      if (current !== null) blocks.push(`${current.join('\n')}\n`)
      current = undefined
    } else if (current) current.push(line)
  }
  return blocks
}

/** The section's text (prose and blocks) up to the next heading of the same or a higher level. */
function sectionText(markdown, heading) {
  const at = markdown.indexOf(`\n${heading}`)
  if (at < 0) throw new Error(`README has no section "${heading}"`)
  const rest = markdown.slice(markdown.indexOf('\n', at + 1) + 1)
  const level = heading.match(/^#+/)[0].length
  const end = rest.search(new RegExp(`^#{1,${level}} `, 'm'))
  return end < 0 ? rest : rest.slice(0, end)
}

/**
 * What the README tells a user to install for the server and the client: the package names of
 * every `npm install` (in the server section's sh block and the client section's prose), and the
 * `npm pkg set` settings.
 */
export function readmeSetup(markdown) {
  const server = sectionBlocks(markdown, '## A server in', 'sh').join('\n')
  const client = sectionText(markdown, '## A client in')
  const commands = [
    ...server.split('\n'),
    ...[...client.matchAll(/`(npm install [^`]+)`/g)].map((m) => m[1]),
  ]
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
  const packages = new Set()
  const settings = []
  for (const command of commands) {
    const words = command.split(/\s+/)
    if (words[0] === 'npm' && words[1] === 'install') {
      for (const word of words.slice(2)) if (!word.startsWith('-')) packages.add(word)
    } else if (words[0] === 'npm' && words[1] === 'pkg' && words[2] === 'set') {
      settings.push(...words.slice(3))
    }
  }
  return { packages: [...packages], settings }
}

/** The packages a snippet imports (`@scope/name` or `name`; `node:` built-ins left out). */
export function snippetImports(source) {
  const names = new Set()
  for (const [, specifier] of source.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)) {
    if (specifier.startsWith('node:') || specifier.startsWith('.')) continue
    const parts = specifier.split('/')
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0])
  }
  return [...names]
}

// ---------------------------------------------------------------------------------------------

const results = { passed: 0, failed: 0 }
function check(name, ok, why = '') {
  if (ok) results.passed++
  else results.failed++
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok || !why ? '' : `: ${clip(why)}`}`)
  return ok
}

/** The environment for every child: npm's own variables from `npm run` do not leak into it. */
function childEnv(extra = {}) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) env[key] = value
  }
  return {
    ...env,
    npm_config_update_notifier: 'false',
    // npx never fetches a package: what it runs must be installed in the project (checked).
    npm_config_yes: 'false',
    NO_COLOR: '1',
    ...extra,
  }
}

const started = new Set()
/** The temp directory, removed at the end and on Ctrl-C. */
let temp

/**
 * Runs `command` in its own process group (so its children, e.g. tsx's node, end with it) and
 * collects its output. `onStdout`/`onStderr` see the output so far. Killed after `timeoutMs`.
 */
function launch(
  command,
  args,
  { cwd, env = childEnv(), timeoutMs = 120_000, onOutput, stdin = 'ignore' } = {},
) {
  const child = spawn(command, args, {
    cwd,
    env,
    detached: true,
    stdio: [stdin, 'pipe', 'pipe'],
  })
  started.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    onOutput?.(stdout, stderr)
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
    onOutput?.(stdout, stderr)
  })
  const timer = setTimeout(() => stop(child), timeoutMs)
  const done = new Promise((resolve) => {
    child.once('error', (error) => {
      stderr += `${error.message}\n`
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      started.delete(child)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { child, done }
}

/** Ends a process group started here, by its id. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    // already gone
  }
}

function run(command, args, options) {
  return launch(command, args, options).done
}

/** A port nothing listens on now, on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/** Resolves when `predicate()` is true, polling every 100 ms; rejects after `timeoutMs`. */
async function until(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** The checks of one tarball's contents and manifest; returns the reasons it is wrong. */
export function tarballProblems(manifest, files) {
  const problems = []
  const has = (path) => files.includes(path.replace(/^\.\//, ''))
  for (const needed of ['package.json', 'LICENSE', 'README.md']) {
    if (!has(needed)) problems.push(`${needed} missing`)
  }
  const unwanted = files.filter((file) => UNWANTED.some((pattern) => pattern.test(file)))
  if (unwanted.length) problems.push(`holds ${unwanted.slice(0, 5).join(', ')}`)
  if (manifest.private) problems.push('is private')
  if (manifest.engines?.node !== '>=20.19') {
    problems.push(`engines.node is ${JSON.stringify(manifest.engines?.node)}, not ">=20.19"`)
  }
  for (const [subpath, conditions] of Object.entries(manifest.exports ?? {})) {
    if (typeof conditions !== 'object') continue
    const keys = Object.keys(conditions)
    if (!keys.includes('types') || !keys.includes('default')) {
      problems.push(`exports["${subpath}"] lacks types or default`)
    } else if (keys.indexOf('types') > keys.indexOf('default')) {
      problems.push(`exports["${subpath}"]: types after default`)
    }
    for (const target of Object.values(conditions)) {
      if (!has(target)) problems.push(`exports["${subpath}"] → ${target} not packed`)
    }
  }
  if (!manifest.exports) problems.push('no exports')
  for (const target of Object.values(manifest.bin ?? {})) {
    if (!has(target)) problems.push(`bin ${target} not packed`)
  }
  return problems
}

/**
 * "alice at a browser", in a child process of the project (the installed dev-auth-server's
 * `devInteraction`, which fills in the real login and MFA forms): reads authorization URLs on
 * stdin, one a line, signs in on each, follows the redirect, and prints `ok` or `error <why>`.
 */
const ALICE = `
import { createInterface } from 'node:readline'
import { devInteraction } from '@callproof/dev-auth-server'
const pages = devInteraction({ user: 'alice' })
for await (const href of createInterface({ input: process.stdin })) {
  try {
    const callback = await pages.authorize(new URL(href), { reason: 'authorize' })
    await (await fetch(callback)).body?.cancel()
    console.log('ok')
  } catch (error) {
    console.log('error ' + error.message)
  }
}
`

/** Hands alice every authorization URL the README client prints on stderr, each once. */
function signInAsAlice(project) {
  const helper = launch(process.execPath, ['--input-type=module', '-e', ALICE], {
    cwd: project,
    stdin: 'pipe',
    timeoutMs: 120_000,
  })
  const seen = []
  return {
    seen,
    onOutput(_stdout, stderr) {
      for (const [, href] of stderr.matchAll(/^ {2}(http:\/\/\S+)$/gm)) {
        if (seen.includes(href)) continue
        seen.push(href)
        helper.child.stdin.write(`${href}\n`)
      }
    },
    /** The helper's answers, one per URL, once it has read them all. */
    async answers() {
      helper.child.stdin.end()
      const { stdout } = await helper.done
      return stdout.split('\n').filter(Boolean)
    },
  }
}

async function main() {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const missing = PUBLISHED.filter((dir) => !existsSync(join(root, dir, 'dist', 'index.js')))
  if (missing.length) {
    check('built', false, `${missing.join(', ')} not built: run npm run build first`)
    return
  }

  temp = realpathSync(mkdtempSync(join(tmpdir(), 'callproof-pack-')))
  if (!relative(root, temp).startsWith(`..${sep}`)) throw new Error(`${temp} is inside ${root}`)
  try {
    await inTemp(readme, temp)
  } finally {
    for (const child of started) stop(child)
    await Promise.all([...started].map((child) => new Promise((r) => child.once('close', r))))
    rmSync(temp, { recursive: true, force: true })
  }
}

async function inTemp(readme, temp) {
  // 1. Pack: one npm for every workspace.
  const tarballs = join(temp, 'tarballs')
  mkdirSync(tarballs)
  const workspaces = PUBLISHED.flatMap((dir) => ['-w', dir])
  const pack = await run(
    'npm',
    ['pack', '--json', '--loglevel=error', '--pack-destination', tarballs, ...workspaces],
    { cwd: root },
  )
  let packed = []
  try {
    packed = JSON.parse(pack.stdout)
  } catch {
    // reported just below
  }
  if (
    !check(
      'npm pack every published package',
      pack.code === 0 && packed.length === PUBLISHED.length,
      pack.stderr,
    )
  ) {
    return
  }
  const byName = new Map()
  for (const entry of packed) {
    const dir = PUBLISHED.find(
      (d) => JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8')).name === entry.name,
    )
    const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'))
    const files = entry.files.map((file) => file.path)
    const problems = tarballProblems(manifest, files)
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (dep.startsWith('@callproof/') && !packed.some((p) => p.name === dep)) {
        problems.push(`depends on ${dep}, which is not published`)
      }
    }
    check(
      `tarball ${entry.name}: ${files.length} files, ${Math.round(entry.size / 1024)} kB`,
      problems.length === 0,
      problems.join('; '),
    )
    byName.set(entry.name, join(tarballs, entry.filename))
  }

  // 2. A fresh project with exactly what the README names; `@callproof/…` names are the
  // tarballs, all installed together (they are not on the registry, and depend on each other).
  let setup
  try {
    setup = readmeSetup(readme)
  } catch (error) {
    check('README names the dependencies', false, error.message)
    return
  }
  const project = join(temp, 'project')
  const fromRegistry = setup.packages.filter((name) => !name.startsWith('@callproof/'))
  const unknown = setup.packages.filter((n) => n.startsWith('@callproof/') && !byName.has(n))
  const named = ['@callproof/server', '@callproof/client', '@callproof/cli', 'tsx']
  const unnamed = named.filter((name) => !setup.packages.includes(name))
  if (
    !check(
      `README names the dependencies: ${setup.packages.join(' ')}`,
      unknown.length === 0 && unnamed.length === 0,
      [unknown.length ? `unknown ${unknown}` : '', unnamed.length ? `missing ${unnamed}` : '']
        .filter(Boolean)
        .join('; '),
    )
  ) {
    return
  }
  mkdirSync(project)
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'callproof-pack-install', version: '0.0.0', private: true }, null, 2)}\n`,
  )
  if (setup.settings.length) {
    const set = await run('npm', ['pkg', 'set', ...setup.settings], { cwd: project })
    if (!check(`npm pkg set ${setup.settings.join(' ')}`, set.code === 0, set.stderr)) return
  }
  const install = await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      '--prefer-offline',
      ...byName.values(),
      ...fromRegistry,
    ],
    { cwd: project, timeoutMs: 300_000 },
  )
  if (
    !check(
      'npm install the tarballs and the README dependencies',
      install.code === 0,
      install.stderr,
    )
  ) {
    return
  }

  // npx runs these from the project only: without them it would look on the registry.
  const bins = ['callproof', 'tsx'].filter(
    (name) => !existsSync(join(project, 'node_modules', '.bin', name)),
  )
  if (!check('node_modules/.bin has callproof and tsx', bins.length === 0, `missing ${bins}`))
    return

  // 3. Every export loads from the installed packages, as a user's program imports them.
  const specifiers = []
  for (const name of byName.keys()) {
    const manifest = JSON.parse(
      readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8'),
    )
    for (const subpath of Object.keys(manifest.exports)) specifiers.push(join(name, subpath))
  }
  const load = await run(
    process.execPath,
    ['--input-type=module', '-e', specifiers.map((s) => `await import('${s}')`).join('\n')],
    { cwd: project },
  )
  check(`import ${specifiers.join(', ')}`, load.code === 0, load.stderr)

  // 4. The README's snippets as files, their ports swapped for free ones (the machine may run
  // something on 3000 or 4000); the dev command's flags come from the README too.
  const [serverSource] = sectionBlocks(readme, '## A server in', 'ts')
  const [clientSource] = sectionBlocks(readme, '## A client in', 'ts')
  const dev = readme
    .replace(/\s+/g, ' ')
    .match(/npx callproof dev --resource (\S+)\s+--scopes (\S+)\s+--auth-port (\d+)/)
  if (
    !check(
      'README has a server snippet, a client snippet and the dev command',
      serverSource && clientSource && dev,
    )
  ) {
    return
  }
  const imported = snippetImports(serverSource + clientSource)
  const unnamedImports = imported.filter((name) => !setup.packages.includes(name))
  check(
    `the README's npm install names every package the snippets import (${imported.join(' ')})`,
    unnamedImports.length === 0,
    `not named: ${unnamedImports.join(' ')}`,
  )
  const [, resource, scopes, authPort] = dev
  const serverPort = new URL(resource).port
  const ports = { [serverPort]: String(await freePort()), [authPort]: String(await freePort()) }
  const swap = (text) =>
    text.replace(new RegExp(`\\b(${serverPort}|${authPort})\\b`, 'g'), (p) => ports[p])
  writeFileSync(join(project, 'server.ts'), swap(serverSource))
  writeFileSync(join(project, 'client.ts'), swap(clientSource))

  const types = await run(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--skipLibCheck',
      'server.ts',
      'client.ts',
    ],
    { cwd: project },
  )
  check(
    'the snippets typecheck against the installed types (tsc --strict)',
    types.code === 0,
    types.stdout,
  )

  const bin = join(project, 'node_modules', '.bin', 'callproof')
  const devArgs = [
    'dev',
    '--resource',
    swap(resource),
    '--scopes',
    scopes,
    '--auth-port',
    ports[authPort],
    '--json',
  ]
  let devInfo
  const devRun = launch(bin, devArgs, {
    cwd: project,
    timeoutMs: 600_000,
    onOutput(stdout) {
      try {
        devInfo ??= JSON.parse(stdout.split('\n')[0])
      } catch {
        // not a whole line yet
      }
    },
  })
  let devExit
  void devRun.done.then((result) => (devExit = result))
  try {
    await until(() => devInfo !== undefined || devExit !== undefined, 30_000, 'no JSON line')
  } catch {
    // reported below
  }
  if (
    !check(
      `callproof ${devArgs.join(' ')}`,
      devInfo?.issuer === `http://127.0.0.1:${ports[authPort]}`,
      devExit?.stderr ?? 'no JSON line with the issuer',
    )
  ) {
    return
  }

  const server = launch('npx', ['tsx', 'server.ts'], { cwd: project, timeoutMs: 600_000 })
  let serverExit
  void server.done.then((result) => (serverExit = result))
  const metadata = `http://127.0.0.1:${ports[serverPort]}/.well-known/oauth-protected-resource/mcp`
  let serverUp = false
  try {
    await until(
      async () =>
        serverExit !== undefined ||
        (serverUp = await fetch(metadata).then(
          (r) => r.ok,
          () => false,
        )),
      30_000,
      'not listening',
    )
  } catch {
    // reported below
  }
  if (
    !check(
      'npx tsx server.ts (the README server) serves its metadata',
      serverUp,
      serverExit?.stderr ?? 'not listening within 30 s',
    )
  ) {
    return
  }

  // The README client, headless: no display, so systemBrowserInteraction() prints each URL; alice
  // signs in on the real development authorization server's pages (and passes the MFA step-up).
  const alice = signInAsAlice(project)
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, WSL_DISTRO_NAME: _wsl, ...headless } = childEnv()
  const client = await run('npx', ['tsx', 'client.ts'], {
    cwd: project,
    env: headless,
    timeoutMs: 60_000,
    onOutput: alice.onOutput,
  })
  const answers = await alice.answers()
  const failures = answers.filter((answer) => answer !== 'ok')
  const stepUp = alice.seen[1] && new URL(alice.seen[1]).searchParams.get('acr_values')
  check(
    'npx tsx client.ts (the README client, no browser): sign-in and MFA step-up, exit 0',
    client.code === 0 &&
      failures.length === 0 &&
      answers.length === 2 &&
      /mfa/.test(stepUp ?? '') &&
      !/^\s+at /m.test(client.stderr),
    failures.length
      ? `alice: ${failures[0]}`
      : `exit ${client.code}, ${alice.seen.length} sign-in URLs: ${client.stderr}`,
  )

  // What the tool answered: the installed cli as alice against the README server.
  const call = await run(
    bin,
    [
      'call',
      `http://127.0.0.1:${ports[serverPort]}/mcp`,
      'delete_note',
      'id=42',
      '--user',
      'alice',
    ],
    { cwd: project, timeoutMs: 60_000 },
  )
  check(
    'callproof call <README server> delete_note id=42 --user alice',
    call.code === 0 && call.stdout.includes('alice deleted 42'),
    `exit ${call.code}: ${call.stdout} ${call.stderr}`,
  )
  stop(server.child)
  stop(devRun.child)

  // 5. The cli from the project, as the README shows it.
  const help = await run('npx', ['callproof', '--help'], { cwd: project })
  check(
    'npx callproof --help',
    help.code === 0 && /\bdemo\b/.test(help.stdout) && /\bdev\b/.test(help.stdout),
    `exit ${help.code}: ${help.stderr}`,
  )
  const demo = await run('npx', ['callproof', 'demo', '--json'], {
    cwd: project,
    timeoutMs: 180_000,
  })
  let report
  try {
    report = JSON.parse(demo.stdout)
  } catch {
    // reported below
  }
  const unexpected = report?.rows?.filter((row) => row.ok !== true || row.expected !== row.actual)
  check(
    `npx callproof demo --json: ${report?.rows?.length ?? 0} steps, every one as expected`,
    demo.code === 0 && report?.ok === true && report.rows.length > 0 && unexpected.length === 0,
    report
      ? `exit ${demo.code}, not as expected: ${unexpected?.map((r) => r.step).join(', ')}`
      : `exit ${demo.code}, stdout is not JSON: ${demo.stdout} ${demo.stderr}`,
  )
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cleanupOnSignal = (signal) => {
    for (const child of started) stop(child)
    if (temp) rmSync(temp, { recursive: true, force: true })
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', cleanupOnSignal)
  process.once('SIGTERM', cleanupOnSignal)
  try {
    await main()
  } catch (error) {
    check('pack-install', false, error instanceof Error ? error.message : String(error))
  }
  console.log(`pack-install: ${results.passed} passed, ${results.failed} failed`)
  process.exit(results.failed === 0 ? 0 : 1)
}
