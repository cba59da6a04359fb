/**
 * `callproof audit <file>`: pretty-prints and filters a JSON-lines audit log written by
 * `@callproof/server`'s `jsonLinesSink`.
 */
import { createReadStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { parse } from './args.js'
import { CliError, UsageError, style, table } from './io.js'
import type { Io } from './io.js'

/** The fields of an audit event this command reads (see `AuditEvent` in `@callproof/server`). */
export interface AuditLine {
  readonly time?: string
  readonly requestId?: string
  readonly decision?: 'allowed' | 'refused'
  readonly reason?: string
  readonly status?: number
  readonly httpMethod?: string
  readonly method?: string
  readonly tool?: string
  readonly argsDigest?: string
  readonly sub?: string
  readonly clientId?: string
  readonly jkt?: string
  readonly tokenId?: string
  readonly approvalId?: string
}

/** Which events to keep. */
export interface AuditFilter {
  readonly tool?: string
  readonly sub?: string
  readonly refused?: boolean
  readonly allowed?: boolean
}

/** Whether an event passes the filter. */
export function matchesFilter(event: AuditLine, filter: AuditFilter): boolean {
  if (filter.tool !== undefined && event.tool !== filter.tool) return false
  if (filter.sub !== undefined && event.sub !== filter.sub) return false
  if (filter.refused === true && event.decision !== 'refused') return false
  if (filter.allowed === true && event.decision !== 'allowed') return false
  return true
}

const REASONS: Record<string, string> = {
  ERR_NO_CREDENTIALS: 'no credentials',
  ERR_INVALID_TOKEN: 'bad access token',
  ERR_BEARER_NOT_ALLOWED: 'token sent as Bearer (needs DPoP)',
  ERR_INVALID_PROOF: 'bad proof (or proof key ≠ token key)',
  ERR_BINDING_MISMATCH: 'proof bound to another call',
  ERR_REPLAY: 'replayed proof',
  ERR_USE_NONCE: 'nonce needed',
  ERR_INSUFFICIENT_SCOPE: 'scope step-up needed',
  ERR_INSUFFICIENT_USER_AUTHENTICATION: 'stronger/fresher login needed',
  ERR_APPROVAL_REQUIRED: 'approval of this call needed',
  ERR_APPROVAL_USED: 'approval already used',
  ERR_CALLER_NOT_ALLOWED: 'caller not allowed',
  ERR_TOOL_DENIED: 'tool denied (no policy / unknown)',
  ERR_SESSION_NOT_FOUND: 'unknown or foreign session',
  ERR_BATCH_NOT_SUPPORTED: 'batch refused',
  ERR_MALFORMED_BODY: 'malformed body',
  ERR_BODY_TOO_LARGE: 'body too large',
  ERR_ORIGIN_NOT_ALLOWED: 'origin/host not allowed',
  ERR_REPLAY_STORE_FULL: 'replay store full (fail closed)',
  ERR_STORE_UNAVAILABLE: 'store unavailable (fail closed)',
}

/** Renders events as a table with a one-line summary. */
export function formatAudit(io: Pick<Io, 'color'>, events: readonly AuditLine[]): string {
  const rows = events.map((e) => {
    const refused = e.decision === 'refused'
    const when = e.time === undefined ? '' : e.time.replace('T', ' ').replace(/Z$/, '')
    const what = e.tool === undefined ? (e.method ?? e.httpMethod ?? '') : `tools/call ${e.tool}`
    const who =
      e.sub === undefined ? style(io, 'dim', '(unverified)') : `${e.sub} via ${e.clientId ?? '?'}`
    const reason = e.reason ?? ''
    // Allowed requests need no explanation; refusals name the check that stopped them.
    return [
      style(io, 'dim', when),
      refused ? style(io, 'red', `✗ ${e.status ?? ''}`.trimEnd()) : style(io, 'green', '✓'),
      who,
      what,
      `${reason}${REASONS[reason] === undefined ? '' : style(io, 'dim', ` — ${REASONS[reason]}`)}`,
    ]
  })
  const refused = events.filter((e) => e.decision === 'refused').length
  return `${table(['time', '', 'caller', 'request', 'reason'], rows)}\n\n${events.length} event(s): ${
    events.length - refused
  } allowed, ${refused} refused`
}

/** Reads a JSON-lines file (or stdin for "-"), keeping the events that pass the filter. */
export async function readAudit(
  file: string,
  filter: AuditFilter,
): Promise<{ events: AuditLine[]; skipped: number }> {
  if (file !== '-') {
    try {
      await access(file)
    } catch {
      throw new CliError(`cannot read audit log ${file}`, {
        hint: 'give the path of the JSON-lines file the server writes with jsonLinesSink()',
      })
    }
  }
  const input = file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8' })
  const lines = createInterface({ input, crlfDelay: Infinity })
  const events: AuditLine[] = []
  let skipped = 0
  for await (const line of lines) {
    if (line.trim() === '') continue
    let event: unknown
    try {
      event = JSON.parse(line)
    } catch {
      skipped++
      continue
    }
    if (typeof event !== 'object' || event === null) {
      skipped++
      continue
    }
    if (matchesFilter(event as AuditLine, filter)) events.push(event as AuditLine)
  }
  return { events, skipped }
}

const HELP = `Usage: callproof audit <file | -> [options]

Pretty-prints a JSON-lines audit log written by @callproof/server (jsonLinesSink):
one line per decision with the verified caller, the request and the reason.
"-" reads the log from stdin.

Options:
  --tool <name>    only calls of this tool
  --sub <user>     only requests from this verified subject
  --refused        only refused requests
  --allowed        only allowed requests
  --json           print the matching events as JSON lines
  -h, --help       show this help`

/** Runs `callproof audit`. */
export async function auditCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse('audit', argv, {
    tool: { type: 'string' },
    sub: { type: 'string' },
    refused: { type: 'boolean' },
    allowed: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  if (positionals.length !== 1) {
    throw new UsageError('audit takes exactly one log file (or "-" for stdin)', 'audit')
  }
  if (values.refused === true && values.allowed === true) {
    throw new UsageError('--refused and --allowed exclude each other', 'audit')
  }
  const { events, skipped } = await readAudit(positionals[0] ?? '-', {
    ...(values.tool === undefined ? {} : { tool: values.tool }),
    ...(values.sub === undefined ? {} : { sub: values.sub }),
    ...(values.refused === true ? { refused: true } : {}),
    ...(values.allowed === true ? { allowed: true } : {}),
  })
  if (values.json === true) {
    for (const e of events) io.out(JSON.stringify(e))
  } else {
    io.out(formatAudit(io, events))
  }
  if (skipped > 0) io.err(`callproof: skipped ${skipped} line(s) that are not JSON objects`)
  return 0
}
