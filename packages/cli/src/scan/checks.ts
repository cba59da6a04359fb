/**
 * The scan: a fixed sequence of requests, each check deciding from what came back. Only
 * `initialize`, `notifications/initialized` and `tools/list` are sent on the scanner's own
 * initiative; a `tools/call` is built in exactly one place, {@link probeCall}, from a tool the
 * user named with `--probe`.
 */
import { bindingFor, createProof } from '@callproof/core'
import { describeAnswer, sendRaw, served } from './http.js'
import type { Answer, WireLog, WireRequest } from './http.js'
import { mcpHeaders } from './callers.js'
import type { ScanCaller } from './callers.js'
import { safeText } from '../terminal.js'

/** The checks, in the order they run and are printed. */
export const SCAN_CHECKS = [
  'unauthenticated-access',
  'persistent-authorization',
  'session-as-credential',
  'token-not-sender-constrained',
  'request-replay',
  'call-not-bound',
  'session-not-bound-to-caller',
] as const

/** The id of a check. */
export type ScanCheckId = (typeof SCAN_CHECKS)[number]

/** A check's verdict. */
export type ScanStatus = 'vulnerable' | 'ok' | 'skipped'

/** One check's verdict and what it saw (server text in it is escaped and cut). */
export interface ScanCheck {
  readonly id: ScanCheckId
  readonly status: ScanStatus
  readonly detail: string
}

/** The whole scan, as `--json` prints it. */
export interface ScanReport {
  readonly target: string
  readonly checks: readonly ScanCheck[]
}

/** A tool the user vouches is harmless to call, with its arguments. */
export interface ScanProbe {
  readonly tool: string
  readonly args: Readonly<Record<string, unknown>>
}

/** Options of {@link runScan}. */
export interface ScanOptions {
  /** The MCP endpoint. */
  readonly url: string
  /** Caller A, then caller B (each optional). */
  readonly callers: readonly ScanCaller[]
  /** Tools that may be called; no other tool ever is. */
  readonly probes: readonly ScanProbe[]
  /** Every request and answer, one line each (`--verbose`). */
  readonly log?: WireLog
}

/** The target is not something to scan (it redirects elsewhere). */
export class ScanTargetError extends Error {
  constructor(message: string) {
    super(message)
    this.name = this.constructor.name
  }
}

/** The MCP revision announced when the server names none. */
const PROTOCOL_VERSION = '2025-11-25'

type Send = (message: object, headers: Record<string, string>) => Promise<Answer>

interface Opened {
  readonly init: Answer
  readonly list?: Answer
  readonly sessionId?: string
  /** Headers that put a request on this session. */
  readonly session: Record<string, string>
  /** `tools/list` was served. */
  readonly ok: boolean
}

let nextId = 1
const request = (method: string, params?: object) => ({
  jsonrpc: '2.0',
  id: nextId++,
  method,
  ...(params === undefined ? {} : { params }),
})

/**
 * The one place a `tools/call` is made: for a tool the user named with `--probe`, with the
 * arguments the user gave.
 */
function probeCall(probe: ScanProbe) {
  return request('tools/call', { name: probe.tool, arguments: probe.args })
}

// A session id and a protocol version chosen by the server go back into headers: only visible
// ASCII of a sane length (MCP requires visible ASCII for session ids), else they are not used.
const headerSafe = (value: unknown, max: number): value is string =>
  typeof value === 'string' &&
  value.length > 0 &&
  value.length <= max &&
  /^[\x21-\x7e]+$/.test(value)

/** initialize → notifications/initialized → tools/list, with one caller's credentials (or none). */
async function openSession(send: Send): Promise<Opened> {
  const init = await send(
    request('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'callproof-scan', version: '0.1.0' },
    }),
    {},
  )
  if (!served(init)) return { init, session: {}, ok: false }
  const announced = (init.rpc?.result as { protocolVersion?: unknown } | undefined)?.protocolVersion
  const version = headerSafe(announced, 40) ? announced : PROTOCOL_VERSION
  const sessionId = headerSafe(init.sessionId, 256) ? init.sessionId : undefined
  const session: Record<string, string> = {
    'mcp-protocol-version': version,
    ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
  }
  await send({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)
  const list = await send(request('tools/list'), session)
  return {
    init,
    list,
    ...(sessionId === undefined ? {} : { sessionId }),
    session,
    ok: served(list),
  }
}

/** What a served `tools/list` listed, in a few escaped words. */
function toolNames(list: Answer | undefined): string {
  const tools = (list?.rpc?.result as { tools?: { name?: unknown }[] } | undefined)?.tools
  if (!Array.isArray(tools)) return 'no tool list'
  const names = tools.slice(0, 5).map((t) => safeText(t.name, { max: 40 }))
  const more = tools.length > 5 ? ` and ${tools.length - 5} more` : ''
  return `${tools.length} tool${tools.length === 1 ? '' : 's'}: ${names.join(', ')}${more}`
}

/** Why a session was not opened: the refusal of its first refused step. */
function refusal(opened: Opened): string {
  return describeAnswer(served(opened.init) ? (opened.list ?? opened.init) : opened.init)
}

/** The same request with the arguments changed after its proof was made. */
function withAlteredArguments(wire: WireRequest): WireRequest {
  const message = JSON.parse(wire.body ?? '{}') as { params?: { arguments?: object } }
  const params = message.params ?? {}
  // An extra member: the smallest change, one a tool most likely ignores, so that what the user
  // vouched for stays what would run.
  const altered = {
    ...message,
    params: { ...params, arguments: { ...params.arguments, callproof_scan_altered: true } },
  }
  return { ...wire, body: JSON.stringify(altered) }
}

/**
 * Runs every check against `options.url` and returns the verdicts, in {@link SCAN_CHECKS} order.
 * Network failures are thrown (the caller turns them into one line).
 */
export async function runScan(options: ScanOptions): Promise<ScanReport> {
  const { url, log, probes } = options
  const checks = new Map<ScanCheckId, ScanCheck>()
  const verdict = (id: ScanCheckId, status: ScanStatus, detail: string) =>
    void checks.set(id, { id, status, detail })
  const anonymous: Send = (message, headers) =>
    sendRaw(
      { method: 'POST', url, headers: mcpHeaders(headers), body: JSON.stringify(message) },
      log,
    )
  const as =
    (caller: ScanCaller): Send =>
    async (message, headers) =>
      (await caller.send(message, headers)).answer
  // Set once persistent-authorization is found: every later "served" may be that, not the check.
  let alsoPersistent = ''

  // unauthenticated-access: no credentials at all.
  const anon = await openSession(anonymous)
  if (anon.init.status >= 300 && anon.init.status < 400) {
    // Followed, a redirect could lead the callers' credentials anywhere: scan its target instead.
    throw new ScanTargetError(
      `${url} redirects (${anon.init.status}) to ${anon.init.redirect ?? 'nowhere'}; not followed — scan that URL if you trust it`,
    )
  }
  const openProbes: string[] = []
  if (served(anon.init)) {
    for (const probe of probes) {
      if (served(await anonymous(probeCall(probe), anon.session))) {
        openProbes.push(safeText(probe.tool, { max: 40 }))
      }
    }
  }
  const open = anon.ok || openProbes.length > 0
  if (anon.ok) {
    verdict(
      'unauthenticated-access',
      'vulnerable',
      `tools/list was answered with no credentials at all (${toolNames(anon.list)})`,
    )
  } else if (openProbes.length > 0) {
    verdict(
      'unauthenticated-access',
      'vulnerable',
      `tools/call ${openProbes.join(', ')} ran with no credentials at all`,
    )
  } else {
    verdict(
      'unauthenticated-access',
      'ok',
      `refused with no credentials: ${refusal(anon)}${probes.length > 0 && served(anon.init) ? `; probes refused too` : ''}`,
    )
  }

  const [a, b] = options.callers
  const rest = SCAN_CHECKS.filter((id) => !checks.has(id))
  if (open) {
    for (const id of rest) {
      verdict(
        id,
        'skipped',
        'no credentials are needed at all (unauthenticated-access): nothing to ride on',
      )
    }
    return finish(url, checks)
  }
  if (a === undefined) {
    for (const id of rest) {
      verdict(id, 'skipped', 'needs a caller: --token <access token> or --login')
    }
    return finish(url, checks)
  }

  const mine = await openSession(as(a))
  const aToken = a.token()
  if (!mine.ok) {
    const why = `caller A (${a.how}) was not served: ${refusal(mine)}`
    const dpop = [mine.init, mine.list].some((x) => x?.scheme?.toLowerCase() === 'dpop')
    const hint = !a.proofs && dpop ? ' — the server asks for DPoP proofs: --login signs them' : ''
    for (const id of rest) verdict(id, 'skipped', `${why}${hint}`)
    if (!a.proofs && aToken !== undefined && dpop) {
      // The token alone was refused and the server wants a proof: that is the sender constraint.
      await tokenAlone(aToken, true)
    }
    return finish(url, checks)
  }

  // persistent-authorization: after A was served, a stranger with nothing at all.
  const after = await openSession(anonymous)
  const persistent = after.ok
  verdict(
    'persistent-authorization',
    persistent ? 'vulnerable' : 'ok',
    persistent
      ? `refused with no credentials at first; after caller A was served, a request with no credentials and no session was served (${toolNames(after.list)})`
      : `after caller A was served, no credentials and no session are still refused: ${refusal(after)}`,
  )
  if (persistent) alsoPersistent = ' (the server serves anyone now: see persistent-authorization)'

  // session-as-credential: A's session id, nothing else.
  if (mine.sessionId === undefined) {
    verdict(
      'session-as-credential',
      'ok',
      'the server issued no session id (stateless): no session to ride on',
    )
  } else {
    const bare = await anonymous(request('tools/list'), mine.session)
    verdict(
      'session-as-credential',
      served(bare) ? 'vulnerable' : 'ok',
      served(bare)
        ? `tools/list with only caller A's Mcp-Session-Id, no credentials, was served${alsoPersistent}`
        : `caller A's Mcp-Session-Id without credentials was refused: ${describeAnswer(bare)}`,
    )
  }

  // token-not-sender-constrained: A's token without A's key.
  if (aToken === undefined) {
    verdict('token-not-sender-constrained', 'skipped', 'caller A sent no access token')
  } else {
    await tokenAlone(aToken, false)
  }

  // request-replay and call-not-bound: only with a tool the user vouched for.
  const probe = probes[0]
  if (probe === undefined) {
    for (const id of ['request-replay', 'call-not-bound'] as const) {
      verdict(
        id,
        'skipped',
        'needs --probe <tool>: a tool that is harmless to call (it may run up to three times)',
      )
    }
  } else {
    const name = safeText(probe.tool, { max: 40 })
    const first = await a.send(probeCall(probe), mine.session)
    if (!served(first.answer)) {
      verdict(
        'request-replay',
        'skipped',
        `the probe ${name} did not run for caller A: ${describeAnswer(first.answer)}`,
      )
    } else {
      const again = await sendRaw(first.wire, log)
      verdict(
        'request-replay',
        served(again) ? 'vulnerable' : 'ok',
        served(again)
          ? `the tools/call ${name} request, sent again byte for byte with the same headers, ran again${alsoPersistent}`
          : `the same tools/call ${name} request sent again was refused: ${describeAnswer(again)}`,
      )
    }
    if (a.sign === undefined) {
      verdict(
        'call-not-bound',
        'skipped',
        'caller A holds a token but no key (--token): a call without a proof has nothing to bind it; --login makes DPoP-protected calls',
      )
    } else if (!served(first.answer)) {
      verdict(
        'call-not-bound',
        'skipped',
        `the probe ${name} did not run for caller A: ${describeAnswer(first.answer)}`,
      )
    } else {
      const unused = await a.sign(probeCall(probe), mine.session)
      const altered = await sendRaw(withAlteredArguments(unused), log)
      if (served(altered)) {
        verdict(
          'call-not-bound',
          'vulnerable',
          `tools/call ${name} ran with arguments changed after its DPoP proof was made${alsoPersistent}`,
        )
      } else if (altered.rpc?.error !== undefined) {
        verdict(
          'call-not-bound',
          'skipped',
          `the server refused the changed arguments as a JSON-RPC error (${describeAnswer(altered)}): it may bind the call or just reject the extra argument; cannot tell`,
        )
      } else if (altered.challenge === 'use_dpop_nonce') {
        verdict(
          'call-not-bound',
          'skipped',
          'the server asked for a fresh nonce first; cannot tell',
        )
      } else {
        verdict(
          'call-not-bound',
          'ok',
          `the same call with changed arguments under an unused proof was refused: ${describeAnswer(altered)}`,
        )
      }
    }
  }

  // session-not-bound-to-caller: B's own valid credentials on A's session.
  if (b === undefined) {
    verdict(
      'session-not-bound-to-caller',
      'skipped',
      'needs a second caller B of another user: a second --token, or a second --user',
    )
  } else if (mine.sessionId === undefined) {
    verdict(
      'session-not-bound-to-caller',
      'ok',
      'the server issued no session id (stateless): no session to steer into',
    )
  } else {
    const theirs = await openSession(as(b))
    if (!theirs.ok) {
      verdict(
        'session-not-bound-to-caller',
        'skipped',
        `caller B (${b.how}) was not served on its own: ${refusal(theirs)}`,
      )
    } else {
      // A control first: a server that serves a session id it never issued does not use sessions
      // at all, and B being served on A's id would then mean nothing.
      const madeUp = Array.from(crypto.getRandomValues(new Uint8Array(24)), (x) =>
        x.toString(16).padStart(2, '0'),
      ).join('')
      const control = await as(b)(request('tools/list'), {
        ...mine.session,
        'mcp-session-id': madeUp,
      })
      const crossed = served(control) ? undefined : await as(b)(request('tools/list'), mine.session)
      if (crossed === undefined) {
        verdict(
          'session-not-bound-to-caller',
          'skipped',
          'the server served caller B on a session id it never issued: it does not hold sessions, so there is none to steer into',
        )
      } else
        verdict(
          'session-not-bound-to-caller',
          served(crossed) ? 'vulnerable' : 'ok',
          served(crossed)
            ? `caller B's own valid credentials were served on caller A's session${alsoPersistent}`
            : `caller B on caller A's session was refused: ${describeAnswer(crossed)}`,
        )
    }
  }
  return finish(url, checks)

  /**
   * The token alone, in every form that carries no proof by the key it is bound to: as Bearer,
   * as DPoP without a proof, and as DPoP with a proof by another key (the scanner's own).
   */
  async function tokenAlone(token: string, refusedAsBearer: boolean): Promise<void> {
    const keyPair = (await crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign', 'verify'],
    )) as CryptoKeyPair
    const htu = `${new URL(url).origin}${new URL(url).pathname}`
    const forms: {
      label: string
      headers: (message: object) => Promise<Record<string, string>>
    }[] = [
      { label: 'as Bearer', headers: async () => ({ authorization: `Bearer ${token}` }) },
      {
        label: 'as DPoP without a proof',
        headers: async () => ({ authorization: `DPoP ${token}` }),
      },
      {
        label: 'as DPoP with a proof by another key',
        headers: async (message) => ({
          authorization: `DPoP ${token}`,
          dpop: await createProof(keyPair, {
            htm: 'POST',
            htu,
            accessToken: token,
            mcp: await bindingFor(message),
          }),
        }),
      },
    ]
    const refusals: string[] = []
    for (const form of forms) {
      if (form.label === 'as Bearer' && refusedAsBearer) {
        refusals.push(`as Bearer: ${refusal(mine)}`)
        continue
      }
      const opened = await openSession(async (message, headers) =>
        anonymous(message, { ...headers, ...(await form.headers(message)) }),
      )
      if (opened.ok) {
        verdict(
          'token-not-sender-constrained',
          'vulnerable',
          `caller A's access token was accepted ${form.label}: whoever holds a copy can use it${alsoPersistent}`,
        )
        return
      }
      refusals.push(`${form.label}: ${refusal(opened)}`)
    }
    verdict(
      'token-not-sender-constrained',
      'ok',
      `the token alone was refused — ${refusals.join('; ')}`,
    )
  }
}

function finish(target: string, checks: Map<ScanCheckId, ScanCheck>): ScanReport {
  return {
    target,
    checks: SCAN_CHECKS.map((id) => checks.get(id) ?? { id, status: 'skipped', detail: 'not run' }),
  }
}
