/**
 * `callproof demo`: the attack and the defence, played on loopback with the real pieces.
 *
 * alice's agent (the callproof client, in this process) signs in, reads, writes, is stepped up to
 * MFA to delete, and approves one share. A second agent, in its own process with its own key and
 * no authorization of its own, then tries to ride on alice's authorization with everything it
 * could capture on loopback. Every step has an expected outcome; the run passes when every actual
 * outcome matches. `--insecure` plays the same story against the insecure baseline, where the
 * expected outcomes are the attacks succeeding.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { connect } from '@callproof/client'
import type { Interaction, InteractionContext } from '@callproof/client'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { parse } from './args.js'
import { CliError, UsageError, style, table } from './io.js'
import type { Io } from './io.js'
import { safeText } from './terminal.js'
import { startStack } from './stack.js'
import type { Stack } from './stack.js'
import { ATTACKS, DOWNSTREAM, PLAN, expectedRefusal, outcomeOf } from './story.js'
import type { AttackPlan, AttackReport, Captured, DemoMode } from './story.js'
import { AFTER, AGENT_METADATA, describeChallenge, recordingFetch } from './trace.js'
import type { Exchange } from './trace.js'
import { PROTOCOL_VERSION } from './wire.js'
import type { Observation } from './wire.js'

export type { DemoMode } from './story.js'

/** One row of the demo's table. */
export interface DemoRow {
  readonly step: number
  readonly actor: 'alice' | 'bob' | 'second agent'
  readonly action: string
  readonly expected: string
  readonly actual: string
  /** `expected === actual`. */
  readonly ok: boolean
  /** The server's reason or the tool's answer, in a few words. */
  readonly detail: string
}

/** The whole run. */
export interface DemoReport {
  readonly mode: DemoMode
  readonly ok: boolean
  readonly rows: readonly DemoRow[]
  readonly issuer: string
  readonly server: string
  /** The second agent's process id and key thumbprint. */
  readonly secondAgent?: { readonly pid: number; readonly jkt: string }
  readonly durationMs: number
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  readonly mode?: DemoMode
  /** Narration lines, as they happen. */
  readonly narrate?: (line: string) => void
  /** Colour for narration (see {@link Io}). */
  readonly color?: boolean
  /** Give up on the second agent after this long (default 20 s). */
  readonly attackerTimeoutMs?: number
  /**
   * The server to play against, when it is not the one `mode` expects: holding the baseline to
   * callproof's expectations shows what a failing run looks like (and tests that it fails).
   */
  readonly against?: 'callproof' | 'baseline'
  /** Called with the running stack (tests use it to look inside). */
  readonly onStack?: (stack: Stack) => void
}

function toolText(result: unknown): string {
  const content = (result as { content?: { type?: string; text?: string }[] }).content ?? []
  return content
    .filter((c) => c.type === 'text')
    .map((c) => c.text ?? '')
    .join('\n')
}

/** A server's answer or an error in one short, escaped line (see {@link safeText}). */
function short(text: string, max = 60): string {
  return safeText(text.replace(/[ \t\n\r]+/g, ' ').trim(), { max })
}

/**
 * Plays the story and returns the table. Starts and stops every server and process it uses,
 * also when a step throws.
 *
 * @example
 * ```ts
 * const report = await runDemo({ mode: 'callproof' })
 * process.exitCode = report.ok ? 0 : 1
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const mode = options.mode ?? 'callproof'
  const started = Date.now()
  const say = options.narrate ?? (() => undefined)
  const io = { color: options.color ?? false }
  const rows: DemoRow[] = []
  const stack = await startStack({
    drive: options.against ?? (mode === 'baseline' ? 'baseline' : 'callproof'),
    mail: true,
  })
  options.onStack?.(stack)
  let client: Client | undefined
  let bobClient: Client | undefined
  try {
    say(
      mode === 'baseline'
        ? style(
            io,
            'yellow',
            '⚠ INSECURE BASELINE: authorization cached process-wide, no per-tool checks, no DPoP',
          )
        : style(
            io,
            'bold',
            'callproof: every call proves who is calling; every tool decides per call',
          ),
    )
    say(`  authorization server  ${stack.issuer}  (development only; users alice, bob)`)
    say(
      `  drive server          ${stack.url}  (${mode === 'baseline' ? 'insecure baseline' : 'callproof'})`,
    )
    if (stack.mail !== undefined) {
      say(`  mail API (downstream) ${stack.mail.origin}  (the drive's email_file sends through it)`)
    }
    say('')
    say(style(io, 'bold', 'alice’s agent (this process, its own non-extractable key)'))

    const recorder = recordingFetch(new URL(stack.url).origin)
    const reasons: InteractionContext['reason'][] = []
    const headless = stack.devInteraction({ user: 'alice' })
    const interaction: Interaction = {
      redirectUri: () => headless.redirectUri(),
      authorize: (url, context) => {
        reasons.push(context.reason)
        return headless.authorize(url, context)
      },
    }

    const aliceStep = async (
      action: string,
      expected: string,
      run: () => Promise<unknown>,
      note?: string,
    ): Promise<unknown> => {
      const step = rows.length + 1
      say(`  ${step}. ${action}`)
      const since = recorder.exchanges.length
      const reasonMark = reasons.length
      let actual: string
      let detail: string
      let result: unknown
      try {
        result = await run()
        const seen = recorder.exchanges
          .slice(since)
          .filter((e) => e.status === 401 || e.status === 403)
        for (const e of seen) say(`     ← ${short(describeChallenge(e), 200)}`)
        const after = reasons.slice(reasonMark).map((r) => AFTER[r])
        for (const a of after) say(`     ↻ the agent handles it: ${a}`)
        const failed = (result as { isError?: boolean } | undefined)?.isError === true
        actual = failed
          ? 'tool error'
          : after.length === 0
            ? 'allowed'
            : `allowed after ${after.join(', ')}`
        detail = short(toolText(result))
      } catch (error) {
        actual = 'failed'
        detail = short(error instanceof Error ? error.message : String(error), 100)
      }
      const ok = actual === expected
      say(`     ${mark(io, ok)} ${actual}${detail === '' ? '' : style(io, 'dim', ` — ${detail}`)}`)
      if (note !== undefined) say(`     ${style(io, 'yellow', `⚠ ${note}`)}`)
      rows.push({ step, actor: 'alice', action, expected, actual, ok, detail })
      return result
    }

    const secure = mode === 'callproof'
    await aliceStep('signs in and lists her files', 'allowed after sign-in', async () => {
      client = await connect(stack.url, {
        interaction,
        fetch: recorder.fetch,
        development: true,
        clientInfo: { name: 'alice-agent', version: '0.1.0' },
        registration: { clientMetadata: AGENT_METADATA('alice’s agent (callproof demo)') },
        // The demo signs in to the baseline too, whose metadata says nothing of DPoP (the tokens
        // stay DPoP-bound: only the early check is skipped).
        requireDpopOffer: false,
      })
      return client.callTool({ name: 'list_files', arguments: {} })
    })
    const call = (name: string, args: Record<string, unknown>) => {
      if (client === undefined) throw new Error('alice’s agent is not connected')
      return client.callTool({ name, arguments: args })
    }
    await aliceStep(`reads ${PLAN.read}`, 'allowed', () => call('read_file', { path: PLAN.read }))
    await aliceStep(`writes ${PLAN.write.path}`, 'allowed', () => call('write_file', PLAN.write))
    await aliceStep(
      `deletes ${PLAN.delete} (needs MFA within 5 min)`,
      secure ? 'allowed after MFA step-up' : 'allowed',
      () => call('delete_file', { path: PLAN.delete }),
      secure ? undefined : 'no MFA was asked: the baseline checks no tool policy',
    )
    await aliceStep(
      `shares ${PLAN.share.path} with ${PLAN.share.with} (needs approval of this call)`,
      secure ? 'allowed after approving this call' : 'allowed',
      () => call('share_file', PLAN.share),
      secure ? undefined : 'no approval was asked: the baseline checks no tool policy',
    )

    say('')
    say(style(io, 'bold', 'downstream: the drive sends mail through another API, for its caller'))
    const downstreamStep = async (
      actor: 'alice' | 'bob',
      action: string,
      expected: string,
      run: () => Promise<unknown>,
      note?: string,
    ): Promise<void> => {
      const step = rows.length + 1
      say(`  ${step}. ${actor} ${action}`)
      const before = stack.mail?.sent().length ?? 0
      let actual: string
      let detail = ''
      try {
        const result = await run()
        const sent = stack.mail?.sent().slice(before) ?? []
        // The mail API's own record of whose authority the message went out with.
        actual =
          sent.length === 1
            ? `mail sent as ${safeText(sent[0]!.from, { max: 40 })}`
            : sent.length === 0
              ? 'no mail sent'
              : `${sent.length} mails sent`
        detail = short(toolText(result))
        if (sent.length === 1) detail = short(`via ${sent[0]!.actor}: ${detail}`)
      } catch (error) {
        actual = 'failed'
        detail = short(error instanceof Error ? error.message : String(error), 100)
      }
      const ok = actual === expected
      say(`     ${mark(io, ok)} ${actual}${detail === '' ? '' : style(io, 'dim', ` — ${detail}`)}`)
      if (note !== undefined) say(`     ${style(io, 'yellow', `⚠ ${note}`)}`)
      rows.push({ step, actor, action, expected, actual, ok, detail })
    }
    await downstreamStep('alice', DOWNSTREAM.alice.action, 'mail sent as alice', () =>
      call('email_file', DOWNSTREAM.alice.args),
    )
    await downstreamStep(
      'bob',
      DOWNSTREAM.bob.action,
      secure ? 'mail sent as bob' : 'mail sent as alice',
      async () => {
        bobClient = await connect(stack.url, {
          interaction: stack.devInteraction({ user: 'bob' }),
          development: true,
          clientInfo: { name: 'bob-agent', version: '0.1.0' },
          registration: { clientMetadata: AGENT_METADATA('bob’s agent (callproof demo)') },
        })
        return bobClient.callTool({ name: 'email_file', arguments: DOWNSTREAM.bob.args })
      },
      secure
        ? undefined
        : 'bob is signed in as himself, yet his mail went out with alice’s mail token: the baseline keeps one downstream token for every caller',
    )

    say('')
    say(
      style(
        io,
        'bold',
        'a second agent (another process, its own key, no authorization of its own)',
      ),
    )
    say(
      style(
        io,
        'dim',
        `  it captured from loopback: alice’s access token, her session id, her write_file and delete_file requests with their proofs`,
      ),
    )
    // If alice's story broke, there is nothing to capture: the attacks are reported as not
    // played (and the run fails), but the table is still printed.
    let report: AttackReport | undefined
    let notPlayed = ''
    try {
      report = await runAttackerProcess(
        { captured: capture(recorder.exchanges, stack.url), attacks: ATTACKS },
        options.attackerTimeoutMs ?? 20_000,
      )
    } catch (error) {
      notPlayed = error instanceof Error ? error.message : String(error)
      say(`  ${mark(io, false)} ${short(notPlayed, 200)}`)
    }
    if (report !== undefined) {
      say(
        style(
          io,
          'dim',
          `  second agent: pid ${safeText(report.pid)}, key thumbprint ${safeText(report.jkt)}`,
        ),
      )
    }
    for (const attack of ATTACKS) {
      const step = rows.length + 1
      const observation = report?.results[attack.id]
      const expected = secure ? expectedRefusal(attack) : 'allowed'
      // The challenge and code in the outcome are the server's words: escaped like every detail.
      const actual =
        observation === undefined ? 'not played' : safeText(outcomeOf(observation), { max: 200 })
      const detail = observation === undefined ? short(notPlayed, 80) : attackDetail(observation)
      const ok = actual === expected
      say(`  ${step}. ${attack.story}`)
      const shown = secure ? actual : style(io, 'yellow', `${actual} (the baseline let it through)`)
      say(`     ${mark(io, ok)} ${shown}${detail === '' ? '' : style(io, 'dim', ` — ${detail}`)}`)
      rows.push({ step, actor: 'second agent', action: attack.title, expected, actual, ok, detail })
    }

    say('')
    say(style(io, 'bold', 'alice checks her drive'))
    {
      const step = rows.length + 1
      const action = 'checks her files after the attacks'
      const expected = secure
        ? 'intact'
        : 'damaged: README.md overwritten, reports/q3.csv deleted, notes/plan.md deleted'
      say(`  ${step}. ${action}`)
      const actual = await checkDrive(call).then(
        (text) => safeText(text, { max: 300 }),
        (error: unknown) =>
          `failed: ${short(error instanceof Error ? error.message : String(error), 200)}`,
      )
      const ok = actual === expected
      say(`     ${mark(io, ok)} ${actual}`)
      rows.push({ step, actor: 'alice', action, expected, actual, ok, detail: '' })
    }
    return {
      mode,
      ok: rows.every((r) => r.ok),
      rows,
      issuer: stack.issuer,
      server: stack.url,
      ...(report === undefined ? {} : { secondAgent: { pid: report.pid, jkt: report.jkt } }),
      durationMs: Date.now() - started,
    }
  } finally {
    await client?.close().catch(() => undefined)
    await bobClient?.close().catch(() => undefined)
    await stack.close()
  }
}

function mark(io: { color: boolean }, ok: boolean): string {
  return ok ? style(io, 'green', '✓') : style(io, 'red', '✗')
}

function attackDetail(observation: Observation): string {
  if (observation.status >= 200 && observation.status < 300) {
    const text = observation.rpc?.error?.message ?? toolText(observation.rpc?.result ?? {})
    return short(`ran as alice: ${text}`)
  }
  return short(observation.description ?? '', 80)
}

/** Reads back what alice's drive should hold and names every difference. */
async function checkDrive(
  call: (name: string, args: Record<string, unknown>) => Promise<unknown>,
): Promise<string> {
  const listing = JSON.parse(toolText(await call('list_files', {}))) as {
    path: string
    sharedWith: string[]
  }[]
  const file = (path: string) => listing.find((f) => f.path === path)
  const damage: string[] = []
  const readme = file('README.md')
  if (readme === undefined) damage.push('README.md deleted')
  else if (toolText(await call('read_file', { path: 'README.md' })).includes('pwned')) {
    damage.push('README.md overwritten')
  }
  const report = file('reports/q3.csv')
  if (report === undefined) damage.push('reports/q3.csv deleted')
  else if (report.sharedWith.includes('mallory')) damage.push('reports/q3.csv shared with mallory')
  const plan = file(PLAN.write.path)
  if (plan === undefined) damage.push(`${PLAN.write.path} deleted`)
  // README first: an overwrite and a later delete of the same file read as "deleted".
  return damage.length === 0 ? 'intact' : `damaged: ${damage.join(', ')}`
}

/** The last successful exchange of each captured call, as the second agent will replay it. */
function capture(exchanges: readonly Exchange[], url: string): Captured {
  const lastOk = (tool: string) => {
    const found = exchanges
      .filter((e) => e.tool === tool && e.status >= 200 && e.status < 300)
      .at(-1)
    if (found === undefined) throw new CliError(`alice’s ${tool} request was not seen on the wire`)
    return found
  }
  const write = lastOk('write_file')
  const del = lastOk('delete_file')
  const authorization = del.request.headers.authorization ?? ''
  return {
    url,
    accessToken: authorization.replace(/^\S+\s+/, ''),
    sessionId: del.request.headers['mcp-session-id'] ?? '',
    protocolVersion: del.request.headers['mcp-protocol-version'] ?? PROTOCOL_VERSION,
    requests: { write: write.request, delete: del.request },
  }
}

/**
 * Runs the second agent as its own Node process (its own key, its own memory) and reads its
 * report. The process is killed if it outlives `timeoutMs`.
 */
async function runAttackerProcess(plan: AttackPlan, timeoutMs: number): Promise<AttackReport> {
  const fromSource = import.meta.url.endsWith('.ts')
  const entry = fileURLToPath(
    new URL(fromSource ? './attacker-process.ts' : './attacker-process.js', import.meta.url),
  )
  const args = fromSource ? ['--conditions=@callproof/source', '--import', 'tsx', entry] : [entry]
  const child = spawn(process.execPath, args, {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  try {
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.stdin.end(JSON.stringify(plan))
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        kill()
        reject(new CliError(`the second agent did not finish within ${timeoutMs / 1000} s`))
      }, timeoutMs)
      child.once('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.once('exit', (exitCode) => {
        clearTimeout(timer)
        resolve(exitCode)
      })
    })
    if (code !== 0) {
      throw new CliError(
        `the second agent failed (exit ${String(code)}): ${stderr.trim().split('\n').at(-1) ?? ''}`,
      )
    }
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as AttackReport
  } finally {
    process.off('exit', kill)
    if (child.exitCode === null && child.signalCode === null) kill()
  }
}

/** Renders the report's table. */
export function formatDemoTable(io: Pick<Io, 'color'>, report: DemoReport): string {
  const rows = report.rows.map((r) => [
    String(r.step),
    r.actor,
    r.action,
    r.expected,
    r.ok ? style(io, 'green', r.actual) : style(io, 'red', r.actual),
    r.ok ? style(io, 'green', '✓') : style(io, 'red', '✗'),
  ])
  const title =
    report.mode === 'baseline'
      ? style(io, 'yellow', 'INSECURE BASELINE — the attacks are expected to succeed')
      : style(io, 'bold', 'callproof — the attacks are expected to be refused')
  const passed = report.rows.filter((r) => r.ok).length
  const verdict = report.ok
    ? style(io, 'green', `${passed}/${report.rows.length} outcomes as expected`)
    : style(
        io,
        'red',
        `${report.rows.length - passed} of ${report.rows.length} outcomes NOT as expected`,
      )
  const grid = table(['#', 'who', 'step', 'expected', 'actual', ''], rows, [
    undefined,
    undefined,
    36,
    30,
    30,
  ])
  return `${title}\n\n${grid}\n\n${verdict} (${(report.durationMs / 1000).toFixed(1)} s)`
}

const HELP = `Usage: callproof demo [options]

Plays caller identity confusion and its defence on loopback, with a real authorization
server (oidc-provider), the drive server and the callproof client:

  alice's agent signs in, reads, writes, is stepped up to MFA to delete a file and
  approves one share; alice and then bob, each signed in as themselves, email a file
  through the mail API downstream of the drive (on callproof each mail goes out as its
  own caller; the baseline sends bob's with alice's mail token); then a second agent — another process with its own key and no
  authorization of its own — tries to ride on alice's authorization: her token, her
  session, her captured proofs, altered arguments. Each attempt is refused, with the reason.

Ends with a table of every step, expected and actual outcome.

Options:
  --insecure   play the same story against the insecure baseline (authorization cached
               process-wide, no per-tool checks): the attacks succeed; then \`callproof
               scan\` measures a fresh baseline
  --json       print the table as JSON on stdout (narration goes to stderr)
  -h, --help   show this help

Exit code: 0 when every outcome is as expected, 1 otherwise.`

/** Runs `callproof demo`. */
export async function demoCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse('demo', argv, {
    insecure: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  if (positionals.length > 0)
    throw new UsageError(`demo takes no arguments, got "${positionals[0]}"`, 'demo')
  const json = values.json === true
  const narrate = json ? io.err : io.out
  // Ctrl-C: exit through process.exit so that the 'exit' hook kills the second agent; the
  // servers live in this process and go with it.
  const interrupted = () => {
    io.err('callproof: demo interrupted')
    process.exit(130)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  let report: DemoReport
  try {
    report = await runDemo({
      mode: values.insecure === true ? 'baseline' : 'callproof',
      narrate,
      color: io.color,
    })
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
  if (json) {
    io.out(JSON.stringify(report, null, 2))
  } else {
    io.out('')
    io.out(formatDemoTable(io, report))
    if (values.insecure === true) {
      // The same weaknesses, measured as `callproof scan` measures any server (a fresh baseline).
      const { scanInsecureBaseline } = await import('./scan/demo.js')
      io.out('')
      io.out((await scanInsecureBaseline(io)).text)
    }
  }
  return report.ok ? 0 : 1
}
