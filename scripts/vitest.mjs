// Runs every vitest project once and ends with one plain line: "tests: N passed, N failed".
// Used by `npm test` (under the current Node) and `npm run test:node24` (under Node 24).
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from './ensure.mjs'

export function vitestWithSummary(extraArgs = []) {
  const report = join(mkdtempSync(join(tmpdir(), 'callproof-test-')), 'report.json')
  const status = run('npx', [
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...extraArgs,
  ])
  let ok = status === 0
  let summary
  try {
    const r = JSON.parse(readFileSync(report, 'utf8'))
    summary = `${r.numPassedTests} passed, ${r.numFailedTests} failed`
    const skipped = r.numPendingTests + r.numTodoTests
    if (skipped > 0) summary += `, ${skipped} skipped`
    if (r.numTotalTests === 0) ok = false
  } catch {
    summary = '0 passed, 1 failed'
    ok = false
  }
  console.log(`\ntests: ${summary}`)
  return ok
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`== vitest under Node ${process.version}`)
  process.exit(vitestWithSummary(process.argv.slice(2)) ? 0 : 1)
}
