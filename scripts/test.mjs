// `npm test`: everything, in the order a reviewer would check it — lint, types, build, every vitest
// project, then the MCP conformance suite's client auth scenarios (under Node 22).
import { ensureNpmPackages, ensureSystemPackages, run } from './ensure.mjs'
import { vitestWithSummary } from './vitest.mjs'

ensureNpmPackages()
ensureSystemPackages()

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
step('conformance')
step('conformance:server')
console.log(`\n== vitest under Node ${process.version} (every package)`)
process.exit(vitestWithSummary() ? 0 : 1)
