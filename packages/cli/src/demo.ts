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
import { parse, portOption } from './args.js'
import { CliError, UsageError, style, table } from './io.js'
import type { Io } from './io.js'
import { safeJson, safeText } from './terminal.js'
import { createStepper } from './step.js'
import type { StepInput } from './step.js'
import { startStack } from './stack.js'
import type { Stack } from './stack.js'
import {
  ATTACKS,
  DOWNSTREAM,
  PLAN,
  SESSION_RIDE,
  SESSION_RIDE_REFUSAL,
  expectedRefusal,
  outcomeOf,
} from './story.js'
import type { AttackPlan, AttackReport, Captured, DemoMode, StepKey } from './story.js'
import { AFTER, AGENT_METADATA, describeChallenge, recordingFetch } from './trace.js'
import type { Exchange } from './trace.js'
import { PROTOCOL_VERSION } from './wire.js'
import type { Observation, WireExchange } from './wire.js'

export type { DemoMode, StepKey } from './story.js'

/** One row of the demo's table. */
export interface DemoRow {
  readonly step: number
  readonly actor: 'alice' | 'bob' | 'second agent'
  readonly action: string
  readonly expected: string
  readonly actual: string
  /** `expected === actual`. */
  readonly ok: boolean
  /** The server's reason or the tool's answer, in full (escaped; bounded for a huge answer). */
  readonly detail: string
  /** Which step of the story this is (the same in both modes; see `LESSON` in story.ts). */
  readonly key: StepKey
  /**
   * For the steps where something can go wrong for alice or bob (the attacks, bob's call on
   * alice's session, bob's mail, alice's drive afterwards): whether the harm happened.
   */
  readonly security?: 'breached' | 'defended'
  /** With {@link DemoOptions.wire}: every request of the step, as sent, with its answer. */
  readonly exchanges?: readonly WireExchange[]
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
  /**
   * Called before each step, and awaited: `demo --step` explains the step and waits for Enter.
   * For the second agent's attacks the other process has already played them all (it plays in
   * one go); the pause paces how they are revealed.
   */
  readonly pause?: (step: { readonly step: number; readonly key: StepKey }) => Promise<void>
  /** Keep every request and answer of each step in its row's `exchanges` (the `--web` page). */
  readonly wire?: boolean
}

function toolText(result: unknown): string {
  const content = (result as { content?: { type?: string; text?: string }[] }).content ?? []
  return content
    .filter((c) => c.type === 'text')
    .map((c) => c.text ?? '')
    .join('\n')
}

/** Access tokens' lifetime in a paced run (`--step`), seconds. */
const PACED_TOKEN_TTL = 3600

/** The most characters of a reason or a tool's answer shown: every normal reason fits. */
const DETAIL_MAX = 400

/**
 * A server's answer or an error on one escaped line (see {@link safeText}): whole, unless it is
 * longer than `max`, and then cut at a word.
 */
function short(text: string, max = DETAIL_MAX): string {
  return safeText(text.replace(/[ \t\n\r]+/g, ' ').trim(), { max, atWord: true })
}

/** A recorded exchange as the lesson shows it: the request as sent, and its answer. */
function wireExchange(exchange: Exchange): WireExchange {
  return {
    request: exchange.request,
    answer: exchange.answer ?? {
      status: exchange.status,
      ...(exchange.challenge === undefined ? {} : { challenge: exchange.challenge }),
      ...(exchange.challengeHeader === undefined
        ? {}
        : { challengeHeader: exchange.challengeHeader }),
    },
  }
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
  const secure = mode === 'callproof'
  const stack = await startStack({
    drive: options.against ?? (mode === 'baseline' ? 'baseline' : 'callproof'),
    mail: true,
    // A paced lesson may last an hour: tokens outlive the pauses, so that no step turns into a
    // new sign-in because the class talked for five minutes. Proofs stay short-lived.
    ...(options.pause === undefined ? {} : { accessTokenTtl: PACED_TOKEN_TTL }),
  })
  options.onStack?.(stack)
  let client: Client | undefined
  let bobClient: Client | undefined

  /** Starts a step: the pause (`--step`), then its narration line. */
  const begin = async (key: StepKey, line: string): Promise<number> => {
    const step = rows.length + 1
    await options.pause?.({ step, key })
    say(`  ${step}. ${line}`)
    return step
  }
  /** Ends a step: its outcome line, its note, its row. */
  const finish = (
    row: Omit<DemoRow, 'ok' | 'exchanges'>,
    exchanges: readonly WireExchange[],
    note?: string,
  ): void => {
    const done: DemoRow = {
      ...row,
      ok: row.actual === row.expected,
      ...(options.wire === true ? { exchanges } : {}),
    }
    say(`     ${outcomeLine(io, done)}`)
    if (note !== undefined) say(`     ${style(io, 'yellow', `⚠ ${note}`)}`)
    rows.push(done)
  }

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

    const origin = new URL(stack.url).origin
    const recorder = recordingFetch(origin, undefined, { answers: true })
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
      key: StepKey,
      action: string,
      expected: string,
      run: () => Promise<unknown>,
      note?: string,
    ): Promise<unknown> => {
      const step = await begin(key, action)
      const since = recorder.exchanges.length
      const reasonMark = reasons.length
      let actual: string
      let detail: string
      let result: unknown
      try {
        result = await run()
        await recorder.settled()
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
        detail = short(error instanceof Error ? error.message : String(error))
      }
      const exchanges = recorder.exchanges.slice(since).map(wireExchange)
      finish({ step, actor: 'alice', action, expected, actual, detail, key }, exchanges, note)
      return result
    }

    await aliceStep(
      'sign-in',
      'signs in and lists her files',
      'allowed after sign-in',
      async () => {
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
      },
    )
    const call = (name: string, args: Record<string, unknown>) => {
      if (client === undefined) throw new Error('alice’s agent is not connected')
      return client.callTool({ name, arguments: args })
    }
    await aliceStep('read', `reads ${PLAN.read}`, 'allowed', () =>
      call('read_file', { path: PLAN.read }),
    )
    await aliceStep('write', `writes ${PLAN.write.path}`, 'allowed', () =>
      call('write_file', PLAN.write),
    )
    await aliceStep(
      'delete',
      `deletes ${PLAN.delete} (needs MFA within 5 min)`,
      secure ? 'allowed after MFA step-up' : 'allowed',
      () => call('delete_file', { path: PLAN.delete }),
      secure ? undefined : 'no MFA was asked: the baseline checks no tool policy',
    )
    await aliceStep(
      'share',
      `shares ${PLAN.share.path} with ${PLAN.share.with} (needs approval of this call)`,
      secure ? 'allowed after approving this call' : 'allowed',
      () => call('share_file', PLAN.share),
      secure ? undefined : 'no approval was asked: the baseline checks no tool policy',
    )

    // bob's agent: his own key, his own sign-in. Its fetch (under the signing) can be armed to
    // put alice's session id on one request: the one thing of hers bob uses in step 'session-ride'.
    const bobRecorder = recordingFetch(origin, undefined, { answers: true })
    let ride: string | undefined
    const bobFetch: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input)
      if (ride !== undefined && url.startsWith(origin) && init?.method === 'POST') {
        const headers = new Headers(init.headers)
        headers.set('mcp-session-id', ride)
        ride = undefined
        return bobRecorder.fetch(input, { ...init, headers })
      }
      return bobRecorder.fetch(input, init)
    }

    say('')
    say(style(io, 'bold', 'downstream: the drive sends mail through another API, for its caller'))
    const downstreamStep = async (
      key: StepKey,
      actor: 'alice' | 'bob',
      action: string,
      expected: string,
      run: () => Promise<unknown>,
      note?: string,
    ): Promise<void> => {
      const step = await begin(key, `${actor} ${action}`)
      const wire = actor === 'alice' ? recorder : bobRecorder
      const since = wire.exchanges.length
      const before = stack.mail?.sent().length ?? 0
      let actual: string
      let detail = ''
      try {
        const result = await run()
        await wire.settled()
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
        detail = short(error instanceof Error ? error.message : String(error))
      }
      const security =
        key !== 'mail-bob' || !actual.startsWith('mail sent as ')
          ? undefined
          : actual === 'mail sent as bob'
            ? 'defended'
            : 'breached'
      finish(
        {
          step,
          actor,
          action,
          expected,
          actual,
          detail,
          key,
          ...(security === undefined ? {} : { security }),
        },
        wire.exchanges.slice(since).map(wireExchange),
        note,
      )
    }
    await downstreamStep('mail-alice', 'alice', DOWNSTREAM.alice.action, 'mail sent as alice', () =>
      call('email_file', DOWNSTREAM.alice.args),
    )
    await downstreamStep(
      'mail-bob',
      'bob',
      DOWNSTREAM.bob.action,
      secure ? 'mail sent as bob' : 'mail sent as alice',
      async () => {
        bobClient = await connect(stack.url, {
          interaction: stack.devInteraction({ user: 'bob' }),
          fetch: bobFetch,
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
    say(style(io, 'bold', 'another caller on alice’s session: bob, fully signed in as himself'))
    {
      const action = SESSION_RIDE.action
      const step = await begin('session-ride', `bob ${action}`)
      const expected = secure ? SESSION_RIDE_REFUSAL : 'allowed'
      const since = bobRecorder.exchanges.length
      let actual: string
      let detail: string
      let answer: Observation | undefined
      try {
        const aliceSession = recorder.exchanges
          .map((e) => e.request.headers['mcp-session-id'])
          .filter((id) => id !== undefined)
          .at(-1)
        if (aliceSession === undefined) throw new CliError('alice’s session id was not seen')
        if (bobClient === undefined) throw new CliError('bob’s agent is not connected')
        ride = aliceSession
        // callproof answers 404, which bob's MCP client reports as an error: the answer on the
        // wire is the outcome.
        await bobClient
          .callTool({ name: SESSION_RIDE.tool, arguments: { ...SESSION_RIDE.args } })
          .catch(() => undefined)
        await bobRecorder.settled()
        answer = bobRecorder.exchanges
          .slice(since)
          .find((e) => e.request.headers['mcp-session-id'] === aliceSession)?.answer
        if (answer === undefined) throw new CliError('bob’s call on alice’s session was not sent')
        actual = safeText(outcomeOf(answer), { max: 200 })
        detail = attackDetail(answer, 'served him alice’s file')
      } catch (error) {
        actual = 'failed'
        detail = short(error instanceof Error ? error.message : String(error))
      } finally {
        ride = undefined
      }
      finish(
        {
          step,
          actor: 'bob',
          action,
          expected,
          actual,
          detail,
          key: 'session-ride',
          ...(answer === undefined ? {} : { security: securityOf(answer) }),
        },
        bobRecorder.exchanges.slice(since).map(wireExchange),
      )
    }

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
      say(`  ${style(io, 'red', '✗')} ${short(notPlayed)}`)
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
      const step = await begin(attack.id, attack.story)
      const observation = report?.results[attack.id]
      const expected = secure ? expectedRefusal(attack) : 'allowed'
      // The challenge and code in the outcome are the server's words: escaped like every detail.
      const actual =
        observation === undefined ? 'not played' : safeText(outcomeOf(observation), { max: 200 })
      const detail =
        observation === undefined ? short(notPlayed) : attackDetail(observation, 'ran as alice')
      finish(
        {
          step,
          actor: 'second agent',
          action: attack.title,
          expected,
          actual,
          detail,
          key: attack.id,
          ...(observation === undefined ? {} : { security: securityOf(observation) }),
        },
        report?.exchanges[attack.id] ?? [],
      )
    }

    say('')
    say(style(io, 'bold', 'alice checks her drive'))
    {
      const action = 'checks her files after the attacks'
      const step = await begin('check', action)
      const since = recorder.exchanges.length
      const expected = secure
        ? 'intact'
        : 'damaged: README.md overwritten, reports/q3.csv shared with mallory, notes/plan.md deleted'
      const actual = await checkDrive(call).then(
        (text) => safeText(text, { max: 300 }),
        (error: unknown) =>
          `failed: ${short(error instanceof Error ? error.message : String(error))}`,
      )
      await recorder.settled()
      const security =
        actual === 'intact' ? 'defended' : actual.startsWith('damaged') ? 'breached' : undefined
      finish(
        {
          step,
          actor: 'alice',
          action,
          expected,
          actual,
          detail: '',
          key: 'check',
          ...(security === undefined ? {} : { security }),
        },
        recorder.exchanges.slice(since).map(wireExchange),
      )
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

/**
 * The mark of an outcome. Where something was at stake it says what happened to alice or bob,
 * whatever the run expected: an attack that worked is red on the baseline too.
 */
function verdictMark(io: { color: boolean }, row: DemoRow): string {
  const attack = row.actor === 'second agent' || row.key === 'session-ride'
  if (row.security === 'breached') return style(io, 'red', attack ? '✗ attack succeeded:' : '✗')
  if (row.security === 'defended') return style(io, 'green', attack ? '✓ defended:' : '✓')
  return row.ok ? style(io, 'green', '✓') : style(io, 'red', '✗')
}

/** A step's outcome line: the mark, the outcome, what was expected if it differs, the detail. */
function outcomeLine(io: { color: boolean }, row: DemoRow): string {
  const unexpected = row.ok ? '' : style(io, 'red', ` (NOT AS EXPECTED: ${row.expected})`)
  const detail = row.detail === '' ? '' : style(io, 'dim', ` — ${row.detail}`)
  return `${verdictMark(io, row)} ${row.actual}${unexpected}${detail}`
}

/** Whether a ride on alice's authority reached the tool. */
function securityOf(observation: Observation): 'breached' | 'defended' {
  return observation.status >= 200 && observation.status < 300 ? 'breached' : 'defended'
}

function attackDetail(observation: Observation, served: string): string {
  if (observation.status >= 200 && observation.status < 300) {
    const text = observation.rpc?.error?.message ?? toolText(observation.rpc?.result ?? {})
    return short(`${served}: ${text}`)
  }
  return short(observation.description ?? '')
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
  const rows = report.rows.map((r) => {
    // Red for harm done and for a surprise, green for a defence and an outcome as expected.
    const good = r.security === undefined ? r.ok : r.security === 'defended'
    const result =
      r.security === 'breached'
        ? r.actor === 'second agent' || r.key === 'session-ride'
          ? 'attack succeeded'
          : 'harm done'
        : r.security === 'defended'
          ? 'defended'
          : r.ok
            ? '✓'
            : '✗'
    return [
      String(r.step),
      r.actor,
      r.action,
      r.expected,
      style(io, good ? 'green' : 'red', r.actual),
      `${style(io, good ? 'green' : 'red', result)}${r.ok ? '' : style(io, 'red', ' (NOT AS EXPECTED)')}`,
    ]
  })
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
  const grid = table(['#', 'who', 'step', 'expected', 'actual', 'result'], rows, [
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
  own caller; the baseline sends bob's with alice's mail token); bob, with his own valid
  token and key, sends a call on alice's session (callproof: 404); then a second agent —
  another process with its own key and no authorization of its own — tries to ride on
  alice's authorization: her token, her captured proofs, altered arguments. Each attempt
  is refused, with the reason.

Ends with a table of every step, expected and actual outcome.

Options:
  --insecure   play the same story against the insecure baseline (authorization cached
               process-wide, no per-tool checks): the attacks succeed; then \`callproof
               scan\` measures a fresh baseline
  --json       print the table as JSON on stdout (narration goes to stderr)
  --step       a lesson: before each step, explain what the caller or attacker does, why it
               works on the baseline and what callproof checks, then wait for Enter. Waits
               only when stdin is a terminal and without --json; otherwise explains and runs on
  --web        play both modes, then serve the story as a page on http://127.0.0.1 (a
               timeline, baseline and callproof side by side, every request expandable)
               until Ctrl-C; --port <n> picks the port (default: any free one)
  -h, --help   show this help

Exit code: 0 when every outcome is as expected, 1 otherwise.`

/** What `demoCommand` can be given instead of the process's own (tests). */
export interface DemoDependencies {
  /** Where `--step` reads Enter from (default: `process.stdin`). */
  readonly stdin?: StepInput
  /** `--web`: called with the page's URL once it is served; resolve to stop serving (default: Ctrl-C). */
  readonly served?: (url: string) => Promise<void>
}

/** Runs `callproof demo`. */
export async function demoCommand(
  argv: string[],
  io: Io,
  dependencies: DemoDependencies = {},
): Promise<number> {
  const { values, positionals } = parse('demo', argv, {
    insecure: { type: 'boolean' },
    json: { type: 'boolean' },
    step: { type: 'boolean' },
    web: { type: 'boolean' },
    port: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  if (positionals.length > 0)
    throw new UsageError(`demo takes no arguments, got "${positionals[0]}"`, 'demo')
  const json = values.json === true
  const port = portOption('demo', values.port)
  if (values.web === true) {
    if (json || values.step === true || values.insecure === true) {
      throw new UsageError('--web plays both modes on its page: it takes only --port', 'demo')
    }
    const { webCommand } = await import('./web.js')
    return webCommand(io, { ...(port === undefined ? {} : { port }), ...dependencies })
  }
  if (port !== undefined) throw new UsageError('--port goes with --web', 'demo')
  const narrate = json ? io.err : io.out
  const stepper =
    values.step === true
      ? createStepper(io, narrate, dependencies.stdin ?? process.stdin, { json })
      : undefined
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
      ...(stepper === undefined ? {} : { pause: (step) => stepper.pause(step) }),
    })
  } finally {
    stepper?.close()
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
  if (json) {
    io.out(safeJson(report, 2))
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
