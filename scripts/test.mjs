// `npm test`: everything, in the order a reviewer would check it — lint, types, build, every vitest
// project, then the MCP conformance suite's client auth scenarios (under Node ≥ 22).
// redis-server and Chromium must be installed (see scripts/system.mjs); nothing is installed here but
// the npm packages.
import { ensureNpmPackages, requireSystemPrograms, run } from './ensure.mjs'
import { vitestWithSummary } from './vitest.mjs'

// Before anything long: a missing redis-server or Chromium is one line, not a failure minutes in.
requireSystemPrograms()
try {
  ensureNpmPackages()
} catch (error) {
  console.error(`callproof: ${error.message}`)
  process.exit(1)
}

function step(name) {
  console.log(`\n== npm run ${name}`)
  if (run('npm', ['run', '--silent', name]) !== 0) {
    console.error(`callproof: npm run ${name} failed`)
    process.exit(1)
  }
}

step('lint')
step('typecheck')
step('build')
step('pack:install')
step('conformance')
step('conformance:server')
console.log(`\n== vitest under Node ${process.version} (every package)`)
process.exit(vitestWithSummary() ? 0 : 1)
