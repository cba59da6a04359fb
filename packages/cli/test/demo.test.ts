import { describe, expect, it } from 'vitest'
import { formatDemoTable, main, memoryIo, runDemo } from '../src/index.js'
import type { DemoReport, Stack } from '../src/index.js'
import { ATTACKS, DOWNSTREAM, SESSION_RIDE } from '../src/story.js'

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as { code?: string }).code === 'ESRCH'
  }
}

async function unreachable(url: string): Promise<boolean> {
  try {
    await fetch(url, { method: 'POST', body: '{}' })
    return false
  } catch {
    return true
  }
}

describe('callproof demo: the whole story against callproof', () => {
  let report: DemoReport
  let stack: Stack | undefined
  const lines: string[] = []

  it('plays every step with the expected outcome', async () => {
    report = await runDemo({
      mode: 'callproof',
      narrate: (l) => lines.push(l),
      onStack: (s) => (stack = s),
    })
    for (const row of report.rows) {
      expect({ step: row.step, action: row.action, actual: row.actual }).toEqual({
        step: row.step,
        action: row.action,
        actual: row.expected,
      })
    }
    expect(report.ok).toBe(true)
    expect(report.rows).toHaveLength(7 + Object.keys(DOWNSTREAM).length + ATTACKS.length)
    expect(report.durationMs).toBeLessThan(30_000)
  })

  it('steps alice up to MFA, asks for one approval, and refuses every ride with its reason', () => {
    const byAction = (prefix: string) => report.rows.find((r) => r.action.startsWith(prefix))
    expect(byAction('deletes')?.actual).toBe('allowed after MFA step-up')
    expect(byAction('shares')?.actual).toBe('allowed after approving this call')
    const attacks = report.rows.filter((r) => r.actor === 'second agent')
    expect(attacks.map((r) => r.actual)).toEqual([
      'refused 401 (no error code) ERR_NO_CREDENTIALS',
      'refused 401 invalid_token ERR_BEARER_NOT_ALLOWED',
      'refused 401 invalid_dpop_proof ERR_INVALID_PROOF',
      'refused 401 invalid_dpop_proof ERR_REPLAY',
      'refused 401 invalid_dpop_proof ERR_BINDING_MISMATCH',
    ])
    // Every refusal comes with the server's reason in words, in full, and is shown as defended.
    for (const r of attacks) {
      expect(r.detail).not.toBe('')
      expect(r.detail).not.toContain('…(+')
      expect(r.security).toBe('defended')
    }
    expect(attacks[1]?.detail).toBe(
      'the Bearer scheme is not accepted; send the token as Authorization: DPoP <token> with a DPoP proof',
    )
    const narration = lines.join('\n')
    expect(narration.match(/✓ defended: refused/g)).toHaveLength(ATTACKS.length + 1)
    expect(narration).not.toContain('attack succeeded')
    expect(report.rows.at(-1)?.actual).toBe('intact')
    expect(lines.join('\n')).toContain('insufficient_user_authentication')
  })

  it('sends each downstream mail as its own caller: bob’s never with alice’s authority', () => {
    const downstream = report.rows.filter((r) => r.action.includes('downstream'))
    expect(downstream.map((r) => [r.actor, r.actual])).toEqual([
      ['alice', 'mail sent as alice'],
      ['bob', 'mail sent as bob'],
    ])
  })

  it('refuses bob, signed in as himself, on alice’s session: 404, as for an unknown session', () => {
    const ride = report.rows.find((r) => r.key === 'session-ride')
    expect(ride).toMatchObject({
      actor: 'bob',
      action: SESSION_RIDE.action,
      actual: 'refused 404 ERR_SESSION_NOT_FOUND',
      security: 'defended',
      detail: 'no such session for this caller',
    })
  })

  it('ran the second agent as another process and left nothing behind', async () => {
    expect(report.secondAgent?.pid).toBeGreaterThan(0)
    expect(report.secondAgent?.pid).not.toBe(process.pid)
    expect(processGone(report.secondAgent?.pid ?? 0)).toBe(true)
    expect(stack).toBeDefined()
    expect(await unreachable(stack?.url ?? '')).toBe(true)
    expect(await unreachable(`${stack?.issuer ?? ''}/.well-known/openid-configuration`)).toBe(true)
  })
})

describe('callproof demo --insecure: the same story against the baseline', () => {
  it('shows every attack succeeding and alice’s drive damaged, as the baseline does', async () => {
    const lines: string[] = []
    const report = await runDemo({ mode: 'baseline', narrate: (l) => lines.push(l), color: true })
    // An attack that worked is an attack that succeeded, in red: never a green tick.
    const narration = lines.join('\n')
    const red = (text: string) => `\u001b[31m${text}\u001b[39m`
    expect(narration.split(`${red('✗ attack succeeded:')} allowed`).length - 1).toBe(
      ATTACKS.length + 1,
    )
    expect(narration.slice(narration.indexOf('another caller on alice'))).not.toContain('✓')
    expect(narration).not.toContain('defended')
    const table = formatDemoTable({ color: true }, report)
    expect(table.split(red('attack succeeded')).length - 1).toBe(ATTACKS.length + 1)
    expect(report.ok).toBe(true)
    const attacks = report.rows.filter((r) => r.actor === 'second agent')
    expect(attacks).toHaveLength(ATTACKS.length)
    for (const r of attacks) {
      expect(r.actual).toBe('allowed')
      expect(r.detail).toMatch(/^ran as alice: /)
      expect(r.security).toBe('breached')
    }
    // bob, with his own valid token and key, is served on alice's session.
    expect(report.rows.find((r) => r.key === 'session-ride')).toMatchObject({
      actor: 'bob',
      actual: 'allowed',
      security: 'breached',
    })
    expect(report.rows.find((r) => r.key === 'session-ride')?.detail).toContain('month,revenue')
    expect(report.rows.find((r) => r.action.startsWith('deletes'))?.actual).toBe('allowed')
    expect(report.rows.at(-1)?.actual).toBe(
      'damaged: README.md overwritten, reports/q3.csv shared with mallory, notes/plan.md deleted',
    )
    // The downstream flaw: bob, signed in as himself, sends with alice's mail token.
    const downstream = report.rows.filter((r) => r.action.includes('downstream'))
    expect(downstream.map((r) => [r.actor, r.actual])).toEqual([
      ['alice', 'mail sent as alice'],
      ['bob', 'mail sent as alice'],
    ])
  })
})

describe('callproof demo --json', () => {
  it('prints the table as JSON on stdout, narration on stderr, and exits 0', async () => {
    const io = memoryIo()
    const code = await main(['demo', '--json'], io)
    expect(code).toBe(0)
    const parsed = JSON.parse(io.stdout.join('\n')) as DemoReport
    expect(parsed.mode).toBe('callproof')
    expect(parsed.ok).toBe(true)
    expect(parsed.rows.every((r) => r.expected === r.actual && r.ok)).toBe(true)
    // Reasons in full in the JSON too, and each row names its step and what was at stake.
    expect(parsed.rows.find((r) => r.key === 'bearer-token')).toMatchObject({
      detail:
        'the Bearer scheme is not accepted; send the token as Authorization: DPoP <token> with a DPoP proof',
      security: 'defended',
    })
    expect(io.stderr.join('\n')).toContain('second agent')
  })

  it('prints a readable table and exits 0 without --json', async () => {
    const io = memoryIo()
    const code = await main(['demo', '--insecure'], io)
    expect(code).toBe(0)
    const out = io.stdout.join('\n')
    expect(out).toContain('INSECURE BASELINE')
    expect(out).toMatch(/14\/14 outcomes as expected/)
    // No colour codes when the Io says no colour (not a terminal, or NO_COLOR).
    expect(out).not.toContain('\u001b[')
  })
})

describe('callproof demo: a run whose outcomes differ from the expected ones', () => {
  it('fails, and says which rows differ', async () => {
    // callproof's expectations held against the baseline: the server lets every ride through.
    const report = await runDemo({ mode: 'callproof', against: 'baseline' })
    expect(report.ok).toBe(false)
    const failed = report.rows.filter((r) => !r.ok)
    expect(failed.map((r) => r.actor)).toContain('second agent')
    expect(failed.find((r) => r.action.startsWith('deletes'))?.actual).toBe('allowed')
    expect(failed.find((r) => r.actor === 'bob')?.actual).toBe('mail sent as alice')
    expect(formatDemoTable({ color: false }, report)).toMatch(/\d+ of 14 outcomes NOT as expected/)
  })
})
