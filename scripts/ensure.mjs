// Makes a fresh clone runnable: installs npm packages when they are missing or older than the
// lockfile, and (for the test suite) checks that the system programs the real-parts tests need
// are there.
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { missingForTests, missingSystemPrograms } from './system.mjs'

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
  // npm's own output to stderr: stdout stays for what the command prints (`demo --json`).
  const options = { stdio: ['ignore', 2, 2] }
  if (run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], options) !== 0) {
    throw new Error('npm ci failed: see the output above')
  }
}

/**
 * Exits with one line naming what to install when a system program the tests need is missing.
 * Nothing is installed here: `.ci/run` installs them on a CI machine, a person with their package
 * manager.
 */
export function requireSystemPrograms() {
  const missing = missingForTests()
  if (missing.length === 0) return
  console.error(`callproof: ${missingSystemPrograms(missing)}`)
  process.exit(1)
}
