/**
 * The scan's report for people: one line per check, a summary, and what each finding means and
 * how callproof closes it. Details are already escaped by the checks; only the layout is here.
 */
import { style, wrap } from '../io.js'
import type { Io } from '../io.js'
import type { ScanCheckId, ScanReport, ScanStatus } from './checks.js'
import { safeText } from '../terminal.js'

const THREAT_MODEL = 'docs/threat-model.md'
/** Width of a check's detail before it wraps (the whole line stays within 100 columns). */
const DETAIL_WIDTH = 54

/** What a finding means, how callproof closes it, and where the threat model explains it. */
export const SCAN_FINDINGS: Readonly<
  Record<ScanCheckId, { readonly means: string; readonly closed: string; readonly threat: string }>
> = {
  'unauthenticated-access': {
    means:
      'anyone who can reach the server can list (or call) its tools: there is no caller to tell apart.',
    closed: 'every request needs an access token for this server, bound to the caller’s key.',
    threat: `${THREAT_MODEL}#t1-caller-identity-confusion-riding-on-another-callers-authorization`,
  },
  'persistent-authorization': {
    means:
      'the server kept one caller’s authorization as its own state; every later caller rides on it.',
    closed: 'nothing about authorization survives a request: each one is verified from scratch.',
    threat: `${THREAT_MODEL}#t1-caller-identity-confusion-riding-on-another-callers-authorization`,
  },
  'session-as-credential': {
    means:
      'an Mcp-Session-Id is enough to act as the caller who opened the session; session ids leak (logs, proxies).',
    closed:
      'a session is never authentication: every request on it carries its own token and proof.',
    threat: `${THREAT_MODEL}#t7-session-hijacking`,
  },
  'token-not-sender-constrained': {
    means: 'the access token works for whoever holds a copy: a leaked token is a stolen identity.',
    closed:
      'tokens are bound to the client’s key (DPoP, cnf.jkt); Bearer is refused; each request proves the key.',
    threat: `${THREAT_MODEL}#t2-token-theft-and-token-replay`,
  },
  'request-replay': {
    means: 'a captured request can be sent again and runs again: one approved call becomes many.',
    closed:
      'each proof has a unique jti that is accepted once (a shared replay store across instances).',
    threat: `${THREAT_MODEL}#t3-proof-replay-on-one-instance-and-across-instances`,
  },
  'call-not-bound': {
    means:
      'a proof authorizes any call: whoever sits between client and server can change the arguments.',
    closed:
      'the proof’s mcp claim binds the method, tool and a digest of the arguments; a change is refused.',
    threat: `${THREAT_MODEL}#t4-argument-tampering-under-a-valid-proof`,
  },
  'session-not-bound-to-caller': {
    means: 'one caller can steer requests into another caller’s session and its state.',
    closed:
      'a session belongs to the caller that opened it (sub, client, key); anyone else gets 404.',
    threat: `${THREAT_MODEL}#t7-session-hijacking`,
  },
}

const MARK: Record<ScanStatus, [string, 'red' | 'green' | 'dim']> = {
  vulnerable: ['✗ VULNERABLE', 'red'],
  ok: ['✓ ok', 'green'],
  skipped: ['– skipped', 'dim'],
}

/** Renders the report: the check lines, the summary, and the meaning of each finding. */
export function formatScanReport(
  io: Pick<Io, 'color'>,
  report: ScanReport,
  context: { readonly callers: readonly string[]; readonly probes: readonly string[] },
): string {
  const lines: string[] = []
  lines.push(style(io, 'bold', `callproof scan ${safeText(report.target, { max: 200 })}`))
  lines.push(
    `  callers: ${context.callers.length === 0 ? 'none (only the checks that need no credentials)' : context.callers.join(', ')}`,
  )
  lines.push(
    `  probes:  ${context.probes.length === 0 ? 'none (no tool is called)' : context.probes.map((p) => safeText(p, { max: 60 })).join(', ')}`,
  )
  lines.push('')
  const width = Math.max(...report.checks.map((c) => c.id.length))
  const indent = ' '.repeat(2 + 12 + 2 + width + 2)
  for (const check of report.checks) {
    const [label, colour] = MARK[check.status]
    // The detail wraps under itself, so that the verdicts stay one column a reader runs down.
    const [first = '', ...more] = wrap(check.detail, DETAIL_WIDTH)
    lines.push(`  ${style(io, colour, label.padEnd(12))}  ${check.id.padEnd(width)}  ${first}`)
    for (const line of more) lines.push(`${indent}${line}`)
  }
  const count = (s: ScanStatus) => report.checks.filter((c) => c.status === s).length
  const vulnerable = count('vulnerable')
  lines.push('')
  lines.push(
    `${style(io, vulnerable > 0 ? 'red' : 'green', `${vulnerable} vulnerable`)}, ${count('ok')} ok, ${count('skipped')} skipped`,
  )
  const findings = report.checks.filter((c) => c.status === 'vulnerable')
  if (findings.length > 0) {
    lines.push('')
    lines.push(style(io, 'bold', 'What the findings mean'))
    for (const finding of findings) {
      const f = SCAN_FINDINGS[finding.id]
      const [means = '', ...more] = wrap(`${finding.id}: ${f.means}`, 96)
      lines.push(`  ${style(io, 'red', finding.id)}${means.slice(finding.id.length)}`)
      for (const line of more) lines.push(`    ${line}`)
      for (const line of wrap(`callproof closes it: ${f.closed}`, 94)) lines.push(`    ${line}`)
      lines.push(`    ${style(io, 'dim', `see ${f.threat}`)}`)
    }
  }
  if (count('skipped') > 0) {
    lines.push('')
    const hint =
      'Skipped checks need more: a caller (--token or --login), a harmless tool (--probe), a second caller of another user; docs/guides/scanning.md says which needs what.'
    for (const line of wrap(hint, 98)) lines.push(style(io, 'dim', line))
  }
  return lines.join('\n')
}
