// `callproof demo --step`: on a terminal it explains each step and waits for Enter; without a
// terminal, or with --json, it explains and runs on (it must never hang where nobody can press
// Enter). The terminal is a stream that says it is a TTY: the pacing is what is tested.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { demoCommand } from '../src/demo.js'
import type { DemoReport } from '../src/demo.js'
import { decodeCredentials } from '../src/credentials.js'
import { memoryIo, runDemo } from '../src/index.js'
import { LESSON } from '../src/story.js'

const STEPS = Object.keys(LESSON).length

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('callproof demo --step', () => {
  it('on a terminal: explains each step, then runs it only after Enter', async () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true })
    const io = memoryIo()
    const out = () => io.stdout.join('\n')
    const done = demoCommand(['--step'], io, { stdin: terminal })
    for (let step = 1; step <= STEPS; step++) {
      await until(
        () => out().includes(`press Enter to run step ${step} `),
        `the prompt of step ${step}`,
      )
      // Explained, and waiting: the step has not run.
      expect(out()).toContain(`── step ${step} of ${STEPS}`)
      await new Promise((r) => setTimeout(r, 50))
      expect(out()).not.toMatch(new RegExp(`\\n {2}${step}\\. `))
      terminal.write('\n')
      await until(() => new RegExp(`\\n {2}${step}\\. `).test(out()), `step ${step} to run`)
    }
    expect(await done).toBe(0)
    const text = out()
    // The lesson's three parts, for a step where the difference shows.
    const ride = LESSON['session-ride']
    expect(text).toContain(ride.does.slice(0, 60))
    expect(text).toContain('the baseline')
    expect(text).toContain('callproof')
    expect(text).toMatch(/14\/14 outcomes as expected/)
  })

  it('pauses before every step in order, with tokens that outlive a long pause', async () => {
    const paused: string[] = []
    const report = await runDemo({
      pause: async ({ step, key }) => void paused.push(`${step} ${key}`),
      wire: true,
    })
    expect(report.ok).toBe(true)
    expect(paused).toEqual(Object.keys(LESSON).map((key, i) => `${i + 1} ${key}`))
    // A class may talk for longer than a token's usual 5 minutes between two steps.
    const last = report.rows.at(-1)?.exchanges?.at(-1)
    const token = decodeCredentials(last?.request.headers ?? {}).token
    const claims = token !== undefined && 'claims' in token ? token.claims : {}
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600)
  })

  it('without a terminal: explains every step, waits for nothing, says so', async () => {
    const pipe = new PassThrough() // never written to: waiting on it would hang the test
    const io = memoryIo()
    expect(await demoCommand(['--step', '--insecure'], io, { stdin: pipe })).toBe(0)
    const text = io.stdout.join('\n')
    expect(text).toContain('stdin is not a terminal, so each step is explained without waiting')
    expect(text.match(/── step \d+ of/g)).toHaveLength(STEPS)
    expect(text).not.toContain('press Enter')
    expect(text).toContain(LESSON['token-own-proof'].baseline)
  })

  it('with --json: explanations on stderr, only the JSON on stdout, no waiting even on a terminal', async () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true })
    const io = memoryIo()
    expect(await demoCommand(['--step', '--json'], io, { stdin: terminal })).toBe(0)
    const report = JSON.parse(io.stdout.join('\n')) as DemoReport
    expect(report.ok).toBe(true)
    const err = io.stderr.join('\n')
    expect(err).toContain('--step with --json')
    expect(err.match(/── step \d+ of/g)).toHaveLength(STEPS)
    expect(err).not.toContain('press Enter')
  })
})
