/**
 * `callproof scan <server-url>`: measures caller identity confusion in any MCP server, acting as
 * one or two callers, and calls no tool the user did not name with `--probe`.
 */
import { isLoopbackHost } from '@callproof/core'
import { parse } from '../args.js'
import { CliError, UsageError, style } from '../io.js'
import type { Io } from '../io.js'
import { loginCaller, tokenCaller } from './callers.js'
import type { ScanCaller } from './callers.js'
import { ScanTargetError, runScan } from './checks.js'
import type { ScanProbe, ScanReport } from './checks.js'
import { formatScanReport } from './format.js'
import { safeText } from '../terminal.js'

const HELP = `Usage: callproof scan <server-url> [options]

Measures caller identity confusion in an MCP server (any server, not only callproof's):
whether it serves callers with no credentials, keeps one caller's authorization for the next,
takes a session id as identity, accepts a token without its key, runs a request twice or
with changed arguments, lets one caller into another's session.

Safe by default: it sends initialize, tools/list and nothing else on its own; a tool is
called only when you name it with --probe (you vouch that calling it is harmless).

Options:
  --token <token>      an access token of caller A; a second --token is caller B (sent as
                       Bearer, only to the server's own origin)
  --login              caller A signs in as a callproof client (its own DPoP key), so the
                       checks that need a proof can run against DPoP servers
  --user <id>          with --login: sign in headlessly as a development test user (alice,
                       bob) of the development authorization server (\`callproof dev\`);
                       a second --user is caller B
  --probe <tool>[=<json>]
                       a harmless tool to call, with its arguments as a JSON object ({}
                       when none); it may run up to three times (as caller A, replayed,
                       with an extra argument) and once without credentials
  --json               print one JSON object: { target, checks: [{ id, status, detail }] }
  --verbose            say on stderr what was sent and what came back (secrets named, not shown)
  -h, --help           show this help

Checks: unauthenticated-access, persistent-authorization, session-as-credential,
token-not-sender-constrained, request-replay, call-not-bound, session-not-bound-to-caller.
Each is vulnerable, ok or skipped (with why). See docs/guides/scanning.md.

Example:
  callproof scan http://127.0.0.1:3000/mcp --token "$TOKEN" --probe whoami

Exit code: 0 when no check is vulnerable, 1 when one is, 2 for a usage error or when the
scan could not run (server unreachable, sign-in failed).`

function parseProbe(value: string): ScanProbe {
  const eq = value.indexOf('=')
  const tool = eq === -1 ? value : value.slice(0, eq)
  if (tool.trim() === '')
    throw new UsageError(`--probe "${safeText(value, { max: 60 })}" names no tool`, 'scan')
  if (eq === -1) return { tool, args: {} }
  let args: unknown
  try {
    args = JSON.parse(value.slice(eq + 1))
  } catch {
    throw new UsageError(
      `--probe ${safeText(tool, { max: 40 })}: the arguments after = must be JSON`,
      'scan',
    )
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new UsageError(
      `--probe ${safeText(tool, { max: 40 })}: the arguments must be a JSON object`,
      'scan',
    )
  }
  return { tool, args: args as Record<string, unknown> }
}

/** What `scanCommand` can be given instead of the real world (tests, embedding programs). */
export interface ScanDependencies {
  /** Opens an authorization URL for `--login` without `--user` (default: `$BROWSER`, else the system browser). */
  readonly openUrl?: (url: string) => Promise<void>
}

/** Runs `callproof scan`. */
export async function scanCommand(
  argv: string[],
  io: Io,
  dependencies: ScanDependencies = {},
): Promise<number> {
  const { values, positionals } = parse('scan', argv, {
    token: { type: 'string', multiple: true },
    login: { type: 'boolean' },
    user: { type: 'string', multiple: true },
    probe: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    verbose: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  const [target, extra] = positionals
  if (target === undefined) throw new UsageError('give the MCP server URL', 'scan')
  if (extra !== undefined) {
    throw new UsageError(
      `scan takes one server URL, got also "${safeText(extra, { max: 60 })}"`,
      'scan',
    )
  }
  let url: URL
  try {
    url = new URL(target)
  } catch {
    throw new UsageError(
      `"${safeText(target, { max: 80 })}" is not a URL (e.g. http://127.0.0.1:3000/mcp)`,
      'scan',
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(
      `the server URL must be http or https, got ${safeText(url.protocol, { max: 20 })}`,
      'scan',
    )
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('the server URL must not carry a user name or password', 'scan')
  }
  url.hash = ''
  const tokens = values.token ?? []
  const users = values.user ?? []
  const login = values.login === true || users.length > 0
  const logins = login ? Math.max(1, users.length) : 0
  if (logins + tokens.length > 2) {
    throw new UsageError(
      'a scan acts as at most two callers (A and B): --token/--user given too often',
      'scan',
    )
  }
  if (users.length === 2 && users[0] === users[1]) {
    throw new UsageError(
      'caller B must be another user than caller A (two different --user)',
      'scan',
    )
  }
  if (tokens.length === 2 && tokens[0] === tokens[1]) {
    throw new UsageError(
      'the two --token values are the same token: caller B needs its own',
      'scan',
    )
  }
  for (const token of tokens) {
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new UsageError(
        '--token must be the access token itself (no spaces, no "Bearer ")',
        'scan',
      )
    }
  }
  const loopback = isLoopbackHost(url.hostname)
  if ((tokens.length > 0 || login) && url.protocol === 'http:' && !loopback) {
    throw new UsageError(
      'credentials go over https only (plain http is allowed on loopback)',
      'scan',
    )
  }
  const probes = (values.probe ?? []).map(parseProbe)
  const json = values.json === true
  const log = values.verbose === true ? (line: string) => io.err(style(io, 'dim', line)) : undefined

  const callers: ScanCaller[] = []
  try {
    for (let i = 0; i < logins; i++) {
      const user = users[i]
      callers.push(
        await loginCaller({
          name: callers.length === 0 ? 'A' : 'B',
          url: url.href,
          ...(user === undefined ? {} : { user }),
          development: loopback,
          ...(log === undefined ? {} : { log }),
          say: (line) => io.err(line),
          ...(dependencies.openUrl === undefined ? {} : { openUrl: dependencies.openUrl }),
          ...(io.env.BROWSER === undefined ? {} : { browser: io.env.BROWSER }),
        }),
      )
    }
    for (const token of tokens) {
      callers.push(tokenCaller(callers.length === 0 ? 'A' : 'B', url.href, token, log))
    }
    let report: ScanReport
    try {
      report = await runScan({
        url: url.href,
        callers,
        probes,
        ...(log === undefined ? {} : { log }),
      })
    } catch (error) {
      throw couldNotRun(error, url)
    }
    if (json) {
      io.out(JSON.stringify(report))
    } else {
      io.out(
        formatScanReport(io, report, {
          callers: callers.map((c) => `${c.name} (${c.how})`),
          probes: probes.map((p) => `${p.tool} ${JSON.stringify(p.args)}`),
        }),
      )
    }
    return report.checks.some((c) => c.status === 'vulnerable') ? 1 : 0
  } finally {
    for (const caller of callers) await caller.close().catch(() => undefined)
  }
}

/** Any failure of the scan itself is exit 2: exit 1 means "vulnerable" and must mean only that. */
function couldNotRun(error: unknown, url: URL): CliError {
  const chain: unknown[] = []
  for (let e = error; e instanceof Error && chain.length < 10; e = e.cause) chain.push(e)
  const text = chain
    .map(
      (e) =>
        `${(e as Error).name} ${(e as Error).message} ${String((e as { code?: unknown }).code ?? '')}`,
    )
    .join(' ')
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|fetch failed/.test(text)) {
    return new CliError(`cannot reach ${url.href}`, {
      exitCode: 2,
      hint: 'is the server running, and is this its MCP endpoint?',
      cause: error,
    })
  }
  if (/TimeoutError|aborted due to timeout/.test(text)) {
    return new CliError(`${url.href} did not answer within 10 s`, { exitCode: 2, cause: error })
  }
  if (error instanceof ScanTargetError)
    return new CliError(error.message, { exitCode: 2, cause: error })
  const first = error instanceof Error ? error.message : String(error)
  const dev = chain.find((e) => (e as Error).name === 'DevInteractionError')
  return new CliError(
    `the scan could not run: ${safeText(first.replace(/\.$/, ''), { max: 200 })}`,
    {
      exitCode: 2,
      ...(dev === undefined
        ? {}
        : { hint: '--user works with the development server’s test users, alice and bob' }),
      cause: error,
    },
  )
}
