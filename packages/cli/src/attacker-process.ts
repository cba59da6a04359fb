/**
 * Entry point of the demo's second-agent process: an attack plan on stdin, the report as one JSON
 * line on stdout. Started by `demo.ts`; not meant to be run by hand.
 */
import { runAttacks } from './attacker.js'
import type { AttackPlan } from './story.js'

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
try {
  const plan = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AttackPlan
  process.stdout.write(`${JSON.stringify(await runAttacks(plan))}\n`)
} catch (error) {
  process.stderr.write(`second agent: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
}
