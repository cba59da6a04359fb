/**
 * The story of both runs as data for the classroom page (`callproof demo --web`): each step with
 * its explanation, its outcome in the insecure baseline and in callproof, and every request of it
 * with its headers, its decoded token and proof, and the server's decision.
 *
 * Everything here came off the wire (tool names, arguments, claims, servers' words): it is
 * bounded here, and the page shows it as text only (never as HTML).
 */
import { decodeCredentials } from './credentials.js'
import type { DecodedCredentials } from './credentials.js'
import type { DemoReport, DemoRow } from './demo.js'
import { LESSON } from './story.js'
import type { StepKey, StepLesson } from './story.js'
import { showInvisible } from './terminal.js'
import type { WireExchange } from './wire.js'

/** One request of a step, for the page. */
export interface LessonExchange {
  readonly method: string
  readonly url: string
  /** `tools/call read_file`, `initialize`…, from the body. */
  readonly call: string
  /** The headers as sent; the token and the proof shortened (they are decoded below). */
  readonly headers: Record<string, string>
  readonly body: string
  readonly credentials: DecodedCredentials
  readonly answer: {
    readonly status: number
    readonly challenge?: string
    readonly code?: string
    readonly description?: string
    /** What the tool answered, when it ran. */
    readonly result?: string
  }
  /** The server's decision in a few words: `allowed`, `refused 401 invalid_dpop_proof ERR_REPLAY`. */
  readonly decision: string
}

/** One step in one mode. */
export interface LessonOutcome {
  readonly actor: string
  readonly action: string
  readonly expected: string
  readonly actual: string
  readonly ok: boolean
  readonly security?: 'breached' | 'defended'
  readonly detail: string
  readonly exchanges: readonly LessonExchange[]
}

/** One step of the story, in both modes. */
export interface LessonStep {
  readonly step: number
  readonly key: StepKey
  readonly lesson: StepLesson
  readonly baseline?: LessonOutcome
  readonly callproof?: LessonOutcome
}

/** What the page plays. */
export interface Lesson {
  readonly steps: readonly LessonStep[]
  readonly ok: { readonly baseline: boolean; readonly callproof: boolean }
}

/** The most characters of one text field; the most items of one list or object. */
const TEXT_MAX = 4000
const ITEMS_MAX = 60
const DEPTH_MAX = 8

/**
 * `text` with its invisible characters shown ({@link showInvisible}), at most `max` characters,
 * with an explicit marker when cut.
 */
export function clip(text: string, max = TEXT_MAX): string {
  const shown = showInvisible(text)
  return shown.length <= max ? shown : `${shown.slice(0, max)}…(+${shown.length - max} chars)`
}

/** A decoded claim set with every string clipped and every list and object bounded. */
function bounded(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return clip(value)
  if (typeof value !== 'object' || value === null) return value
  if (depth >= DEPTH_MAX) return '…(nested too deep)'
  if (Array.isArray(value)) return value.slice(0, ITEMS_MAX).map((v) => bounded(v, depth + 1))
  const entries = Object.entries(value).slice(0, ITEMS_MAX)
  return Object.fromEntries(entries.map(([k, v]) => [clip(k, 200), bounded(v, depth + 1)]))
}

function callOf(body: string | undefined): string {
  if (body === undefined) return ''
  try {
    const message = JSON.parse(body) as { method?: unknown; params?: { name?: unknown } }
    const method = typeof message.method === 'string' ? message.method : ''
    const name = typeof message.params?.name === 'string' ? ` ${message.params.name}` : ''
    return clip(`${method}${name}`, 300)
  } catch {
    return ''
  }
}

/** A credential header without its value: it is shown decoded instead. */
function shortened(value: string): string {
  const [scheme, rest] = value.includes(' ') ? value.split(/\s+/, 2) : ['', value]
  const credential = rest ?? ''
  return `${scheme === '' ? '' : `${scheme} `}${credential.slice(0, 16)}…(${credential.length} chars, decoded below)`
}

function resultText(rpc: WireExchange['answer']['rpc']): string | undefined {
  if (rpc?.error !== undefined) return `JSON-RPC error ${rpc.error.code}: ${rpc.error.message}`
  const content = (rpc?.result as { content?: { type?: string; text?: string }[] } | undefined)
    ?.content
  if (content === undefined)
    return rpc?.result === undefined ? undefined : JSON.stringify(rpc.result)
  return content.map((c) => (c.type === 'text' ? (c.text ?? '') : `[${String(c.type)}]`)).join('\n')
}

/** One recorded exchange as the page shows it. */
export function lessonExchange(exchange: WireExchange): LessonExchange {
  const { request, answer } = exchange
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers).slice(0, ITEMS_MAX)) {
    headers[clip(name, 200)] =
      name === 'authorization' || name === 'dpop' ? shortened(value) : clip(value, 1000)
  }
  const result = answer.status >= 200 && answer.status < 300 ? resultText(answer.rpc) : undefined
  const refused = answer.status >= 400
  return {
    method: clip(request.method, 20),
    url: clip(request.url, 1000),
    call: callOf(request.body),
    headers,
    body: clip(request.body ?? ''),
    credentials: bounded(decodeCredentials(request.headers)) as DecodedCredentials,
    answer: {
      status: answer.status,
      ...(answer.challengeHeader === undefined
        ? {}
        : { challenge: clip(answer.challengeHeader, 1000) }),
      ...(answer.code === undefined ? {} : { code: clip(answer.code, 100) }),
      ...(answer.description === undefined ? {} : { description: clip(answer.description, 1000) }),
      ...(result === undefined ? {} : { result: clip(result) }),
    },
    decision: refused
      ? clip(
          `refused ${answer.status}${answer.challenge ? ` ${answer.challenge}` : ''}${answer.code === undefined ? '' : ` ${answer.code}`}`,
          300,
        )
      : answer.status === 202
        ? 'accepted (a notification)'
        : 'allowed',
  }
}

function outcome(row: DemoRow | undefined): LessonOutcome | undefined {
  if (row === undefined) return undefined
  // The demo escaped these already; the page does not rely on it.
  return {
    actor: clip(row.actor, 100),
    action: clip(row.action, 1000),
    expected: clip(row.expected, 1000),
    actual: clip(row.actual, 1000),
    ok: row.ok,
    ...(row.security === undefined ? {} : { security: row.security }),
    detail: clip(row.detail, 1000),
    exchanges: (row.exchanges ?? []).slice(0, ITEMS_MAX).map(lessonExchange),
  }
}

/**
 * Both runs, step by step (the same keys in the same order in both modes).
 *
 * @example
 * ```ts
 * const lesson = buildLesson(
 *   await runDemo({ mode: 'baseline', wire: true }),
 *   await runDemo({ mode: 'callproof', wire: true }),
 * )
 * ```
 */
export function buildLesson(baseline: DemoReport, callproof: DemoReport): Lesson {
  const keys = Object.keys(LESSON) as StepKey[]
  const steps = keys.map((key, index) => {
    const b = outcome(baseline.rows.find((r) => r.key === key))
    const c = outcome(callproof.rows.find((r) => r.key === key))
    return {
      step: index + 1,
      key,
      lesson: LESSON[key],
      ...(b === undefined ? {} : { baseline: b }),
      ...(c === undefined ? {} : { callproof: c }),
    }
  })
  return { steps, ok: { baseline: baseline.ok, callproof: callproof.ok } }
}
