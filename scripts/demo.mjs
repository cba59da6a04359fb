// `npm run demo`: works on a fresh clone. Installs npm packages when needed, builds the workspaces
// when a dist/ is missing or older than its sources, links the `callproof` bin (so that the
// README's `npx callproof …` lines run this checkout's CLI), then runs `callproof demo` with the
// extra arguments (e.g. `npm run demo -- --insecure`, `npm run demo -- --json`) and exits with its
// code. Everything this script says goes to stderr: stdout is the CLI's alone (`--json`).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ensureNpmPackages, root } from './ensure.mjs'

/** Newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir) {
  if (!existsSync(dir)) return 0
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/** Workspaces with a build (a tsconfig.build.json) whose dist/ is missing or older than src/. */
function staleWorkspaces() {
  const stale = []
  for (const group of ['packages', 'examples']) {
    const base = join(root, group)
    if (!existsSync(base)) continue
    for (const name of readdirSync(base)) {
      const dir = join(base, name)
      if (!existsSync(join(dir, 'tsconfig.build.json')) || !existsSync(join(dir, 'src'))) continue
      const built = newest(join(dir, 'dist'))
      if (built === 0 || built < newest(join(dir, 'src'))) stale.push(`${group}/${name}`)
    }
  }
  return stale
}

try {
  ensureNpmPackages()
} catch (error) {
  console.error(`callproof: ${error.message}`)
  process.exit(1)
}

const stale = staleWorkspaces()
if (stale.length > 0) {
  // A long step: say what and why, keep turbo's log for when it fails.
  const started = Date.now()
  console.error(
    `callproof: building ${stale.length} workspace(s) (about a minute on a fresh clone)…`,
  )
  const build = spawnSync('npm', ['run', '--silent', 'build', '--', '--output-logs=errors-only'], {
    cwd: root,
    encoding: 'utf8',
  })
  if (build.error !== undefined || build.status !== 0) {
    process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}`)
    console.error(
      'callproof: npm run build failed (output above); fix it, then run `npm run demo` again',
    )
    process.exit(1)
  }
  console.error(`callproof: built in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}

// `npm ci` on a fresh clone ran before packages/cli/dist/bin.js existed, so npm linked no
// node_modules/.bin/callproof, and `npx callproof` would ask the public registry for a package
// of that name. The root `postbuild` links it after `npm run build`; this covers a build made
// another way (turbo directly, a workspace's own build).
if (!existsSync(join(root, 'node_modules', '.bin', 'callproof'))) {
  const link = spawnSync(
    'npm',
    ['rebuild', '--ignore-scripts', '--loglevel=error', '@callproof/cli'],
    { cwd: root, encoding: 'utf8' },
  )
  if (link.error !== undefined || link.status !== 0) {
    console.error(
      'callproof: could not link the callproof command (npm rebuild @callproof/cli); `npx callproof` will not work, `node packages/cli/dist/bin.js` will',
    )
  }
}

const child = spawn(
  process.execPath,
  [join(root, 'packages/cli/dist/bin.js'), 'demo', ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: root },
)
// Ctrl-C reaches the demo through the terminal; it cleans up and exits on its own.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)))
