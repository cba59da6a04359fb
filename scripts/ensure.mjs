// Makes a fresh clone runnable: installs npm packages when they are missing or older than the
// lockfile, and (for the test suite) the system programs the real-parts tests need.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))

export function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options })
  if (r.error) throw r.error
  return r.status ?? 1
}

export function ensureNpmPackages() {
  const marker = `${root}node_modules/.package-lock.json`
  const lock = `${root}package-lock.json`
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return
  console.error('callproof: installing npm packages (npm ci)…')
  if (run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']) !== 0) {
    throw new Error('npm ci failed: see the output above')
  }
}

function has(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0
}

/** redis-server and chromium come from Debian's packages; install them when we are root and can. */
export function ensureSystemPackages() {
  const missing = [
    ['redis-server', 'redis-server'],
    ['chromium', 'chromium'],
  ].filter(([bin]) => !has(bin) && !(bin === 'chromium' && existsSync('/usr/bin/chromium')))
  if (missing.length === 0) return
  const names = missing.map(([, pkg]) => pkg)
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!isRoot || !has('apt-get')) {
    throw new Error(
      `the tests need ${names.join(' and ')}: install them (Debian/Ubuntu: sudo apt-get install -y ${names.join(' ')})`,
    )
  }
  console.error(`callproof: installing ${names.join(', ')} with apt-get…`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', ...names], { stdio: 'inherit', env })
}
