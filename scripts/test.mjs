// `npm test`: everything, in the order a reviewer would check it — lint, types, build, every test.
import { readFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureNpmPackages, ensureSystemPackages, run } from './ensure.mjs'

ensureNpmPackages()
ensureSystemPackages()

for (const step of ['lint', 'typecheck', 'build']) {
  console.log(`\n== npm run ${step}`)
  if (run('npm', ['run', '--silent', step]) !== 0) {
    console.error(`callproof: npm run ${step} failed`)
    process.exit(1)
  }
}

console.log('\n== vitest (every package)')
const report = join(mkdtempSync(join(tmpdir(), 'callproof-test-')), 'report.json')
const status = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
])
let summary = ''
try {
  const r = JSON.parse(readFileSync(report, 'utf8'))
  summary = `${r.numPassedTests} passed, ${r.numFailedTests} failed`
  if (r.numPendingTests + r.numTodoTests > 0)
    summary += `, ${r.numPendingTests + r.numTodoTests} skipped`
  if (r.numTotalTests === 0) summary += ' (no test ran)'
} catch {
  summary = '0 passed, 1 failed'
}
console.log(`\ntests: ${summary}`)
process.exit(status === 0 && !summary.includes('no test ran') ? 0 : 1)
