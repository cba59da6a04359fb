/**
 * `callproof audit <file>`: pretty-prints and filters a JSON-lines audit log written by
 * `@callproof/server`'s `jsonLinesSink`.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { parse } from './args.js'
import { CliError, UsageError, style, table } from './io.js'
import type { Io } from './io.js'
import { safeJson, safeText } from './terminal.js'

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
  ERR_BINDING_REQUIRED: 'proof not bound to the call (the tool requires it)',
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
  ERR_NOT_ACCEPTABLE: 'Accept lacks a media type MCP needs',
  ERR_UNSUPPORTED_MEDIA_TYPE: 'body not application/json',
  ERR_UNSUPPORTED_PROTOCOL_VERSION: 'unsupported MCP protocol version',
  ERR_HEADER_MISMATCH: 'Mcp-Method/Mcp-Name header mismatch',
  ERR_INVALID_CONTINUATION: 'foreign or forged MRTR continuation',
  ERR_QUOTA_EXCEEDED: "over this caller's quota",
  ERR_ORIGIN_NOT_ALLOWED: 'origin/host not allowed',
  ERR_REPLAY_STORE_FULL: 'replay store full (fail closed)',
  ERR_STORE_UNAVAILABLE: 'store unavailable (fail closed)',
}

/** Caps of the columns: a forged 1 MB tool name is one bounded cell, not a screenful. */
const FIELD_MAX = { time: 40, caller: 40, request: 120, reason: 60 } as const

/**
 * Renders events as a table with a one-line summary. Every field is shown through
 * {@link safeText}: the log holds what unauthenticated requests sent (a tool name with a newline
 * and escape sequences would otherwise print a forged row, move the cursor or retitle the window).
 */
export function formatAudit(io: Pick<Io, 'color'>, events: readonly AuditLine[]): string {
  const rows = events.map((e) => {
    const refused = e.decision === 'refused'
    const when =
      typeof e.time === 'string' ? e.time.replace('T', ' ').replace(/Z$/, '') : (e.time ?? '')
    const what =
      e.tool === undefined
        ? safeText(e.method ?? e.httpMethod ?? '', { max: FIELD_MAX.request })
        : `tools/call ${safeText(e.tool, { max: FIELD_MAX.request })}`
    const who =
      e.sub === undefined
        ? style(io, 'dim', '(unverified)')
        : `${safeText(e.sub, { max: FIELD_MAX.caller })} via ${safeText(e.clientId ?? '?', { max: FIELD_MAX.caller })}`
    const reason = typeof e.reason === 'string' ? e.reason : ''
    const meaning = Object.hasOwn(REASONS, reason) ? REASONS[reason] : undefined
    // Allowed requests need no explanation; refusals name the check that stopped them.
    return [
      style(io, 'dim', safeText(when, { max: FIELD_MAX.time })),
      refused
        ? style(io, 'red', `✗ ${safeText(e.status ?? '', { max: 5 })}`.trimEnd())
        : style(io, 'green', '✓'),
      who,
      what,
      `${safeText(e.reason ?? '', { max: FIELD_MAX.reason })}${meaning === undefined ? '' : style(io, 'dim', ` — ${meaning}`)}`,
    ]
  })
  const refused = events.filter((e) => e.decision === 'refused').length
  return `${table(['time', '', 'caller', 'request', 'reason'], rows)}\n\n${events.length} event(s): ${
    events.length - refused
  } allowed, ${refused} refused`
}

/** Whether a parsed line is an audit event: an object whose `decision` is allowed or refused. */
function isAuditEvent(value: unknown): value is AuditLine {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const decision = (value as { decision?: unknown }).decision
  return decision === 'allowed' || decision === 'refused'
}

/**
 * Reads a JSON-lines file (or stdin for "-"), keeping the events that pass the filter. A line
 * that is not an audit event (not JSON, or no allowed/refused decision) is counted in `skipped`,
 * never shown as an event.
 */
export async function readAudit(
  file: string,
  filter: AuditFilter,
): Promise<{ events: AuditLine[]; skipped: number }> {
  if (file !== '-') {
    const info = await stat(file).catch(() => undefined)
    if (info === undefined) {
      throw new CliError(`cannot read audit log ${file}`, {
        hint: 'give the path of the JSON-lines file the server writes with jsonLinesSink()',
      })
    }
    if (info.isDirectory()) {
      throw new CliError(`${file} is a directory, not an audit log`, {
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
    if (!isAuditEvent(event)) {
      skipped++
      continue
    }
    if (matchesFilter(event, filter)) events.push(event)
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
    for (const e of events) io.out(safeJson(e))
  } else {
    io.out(formatAudit(io, events))
  }
  if (skipped > 0) io.err(`callproof: skipped ${skipped} malformed line(s) (not JSON audit events)`)
  return 0
}
