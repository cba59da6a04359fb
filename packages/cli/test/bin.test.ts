// The real executable as a user runs it: a separate Node process, its exit code, its output,
// and nothing left running afterwards.
import { describe, expect, it } from 'vitest'
import type { DemoReport } from '../src/index.js'
import type { DevInfo } from '../src/dev.js'
import { callproof, gone } from './support/process.js'

describe('the callproof executable', () => {
  it('`demo --json` exits 0 with every outcome as expected and leaves no process behind', async () => {
    const run = callproof(['demo', '--json'], { FORCE_COLOR: '1' })
    expect(await run.exited).toBe(0)
    const report = JSON.parse(run.out()) as DemoReport
    expect(report.rows.every((r) => r.ok && r.expected === r.actual)).toBe(true)
    expect(report.durationMs).toBeLessThan(30_000)
    expect(gone(report.secondAgent?.pid ?? 0)).toBe(true)
    // Not a terminal: no colour codes anywhere.
    expect(run.out() + run.err()).not.toContain('\u001b[')
    // oidc-provider's development notices are not part of the story.
    expect(run.err()).not.toContain('oidc-provider WARNING')
  })

  it('`dev --json` prints one line, serves, and stops cleanly on Ctrl-C', async () => {
    const run = callproof(['dev', '--json'])
    while (!run.out().includes('\n')) {
      expect(run.child.exitCode).toBeNull()
      await new Promise((r) => setTimeout(r, 50))
    }
    const info = JSON.parse(run.out().trim()) as DevInfo
    expect((await fetch(`${info.issuer}/.well-known/openid-configuration`)).status).toBe(200)
    run.child.kill('SIGINT')
    expect(await run.exited).toBe(0)
    await expect(fetch(info.server, { method: 'POST' })).rejects.toThrow()
    await expect(fetch(info.issuer)).rejects.toThrow()
  })

  it('ends a wrong command line with one line and exit code 2', async () => {
    const run = callproof(['inspect'])
    expect(await run.exited).toBe(2)
    expect(run.err()).toBe(
      'callproof: inspect takes exactly one JWT (or "-" to read it from stdin) — run `callproof inspect --help`\n',
    )
  })
})
