/**
 * Multi Round-Trip Requests (MCP 2026-07-28, SEP-2322) bound to the caller and to the call they
 * continue.
 *
 * A tool that needs input from the client answers with an `InputRequiredResult` (`resultType:
 * 'input_required'`, `inputRequests`, an optional opaque `requestState`); the client then sends
 * the same request again with `inputResponses` and the `requestState` echoed. Nothing in the
 * protocol ties that retry to whoever got the first answer: the SDK passes `requestState`
 * through as attacker-controlled input. Here, every `InputRequiredResult` leaving the server gets
 * a `requestState` of ours that seals the tool's own state (if any) together with
 *
 * - the caller (subject, client, key): another caller cannot continue it, and
 * - the call (method, name, argument digest, as the proof's `mcp` binding says): it continues
 *   this call only, not another tool or the same tool with other arguments,
 *
 * under an HMAC-SHA-256 key of this server, with an expiry. A retry carrying `inputResponses` or
 * a `requestState` is admitted only when the seal opens for this caller and this call; the tool
 * then receives its own `requestState` back, exactly as it minted it.
 *
 * The seal is signed, not encrypted: the client can read the tool's state inside it (as it could
 * before). Instances that share `key` accept each other's continuations.
 *
 * @module
 */
import { base64url } from 'jose'
import { CallproofError } from '@callproof/core'
import type { Caller, McpBinding } from '@callproof/core'

/** Options of {@link createContinuations}. */
export interface ContinuationOptions {
  /** The HMAC key, at least 32 bytes (default: random per process). */
  readonly key?: Uint8Array
  /** How long a continuation may be used, seconds (default 600, the SDK's own default). */
  readonly ttlSeconds?: number
  /** Milliseconds since the epoch. */
  readonly clock?: () => number
}

/** Seals and opens the `requestState` of this server's `InputRequiredResult`s. */
export interface Continuations {
  /** The `requestState` to send instead of `state` (the tool's own, if any). */
  seal(state: string | undefined, caller: Caller, binding: McpBinding): Promise<string>
  /**
   * The tool's own `requestState` inside `wire` (`undefined` when it had none). Throws
   * `ERR_INVALID_CONTINUATION` unless `wire` was sealed by this server, for this caller and this
   * call, and has not expired.
   */
  open(wire: string, caller: Caller, binding: McpBinding): Promise<string | undefined>
}

const PREFIX = 'cp1.'
/** A continuation longer than this is not ours (a tool's state is small; a seal adds ~100). */
const MAX_WIRE = 64 * 1024
const encoder = new TextEncoder()

/** Creates the continuation sealer of one server. */
export function createContinuations(options: ContinuationOptions = {}): Continuations {
  const raw = new Uint8Array(options.key ?? crypto.getRandomValues(new Uint8Array(32)))
  if (raw.byteLength < 32) {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'the continuation key needs 32 bytes or more')
  }
  const seconds = options.ttlSeconds ?? 600
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'the continuation lifetime must be positive')
  }
  const ttl = seconds * 1000
  const clock = options.clock ?? Date.now
  const key = crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ])

  /** What the MAC covers: the payload and, apart, everything it is bound to. */
  function signed(payload: string, caller: Caller, binding: McpBinding): Uint8Array<ArrayBuffer> {
    const call = 'method' in binding ? [binding.method, binding.name ?? '', binding.args ?? ''] : []
    return encoder.encode(
      JSON.stringify(['callproof/mrtr', caller.sub, caller.clientId, caller.jkt, ...call, payload]),
    )
  }

  return {
    async seal(state, caller, binding) {
      const payload = base64url.encode(
        JSON.stringify({ s: state ?? null, e: clock() + ttl } satisfies Payload),
      )
      const mac = await crypto.subtle.sign('HMAC', await key, signed(payload, caller, binding))
      return `${PREFIX}${payload}.${base64url.encode(new Uint8Array(mac))}`
    },
    async open(wire, caller, binding) {
      const dot = wire.lastIndexOf('.')
      if (wire.length > MAX_WIRE || !wire.startsWith(PREFIX) || dot <= PREFIX.length) {
        throw invalid('it is not a continuation this server issued')
      }
      const payload = wire.slice(PREFIX.length, dot)
      let mac: Uint8Array<ArrayBuffer>
      try {
        mac = new Uint8Array(base64url.decode(wire.slice(dot + 1)))
      } catch {
        throw invalid('it is not a continuation this server issued')
      }
      const good = await crypto.subtle.verify(
        'HMAC',
        await key,
        mac,
        signed(payload, caller, binding),
      )
      // One answer for a forgery, another caller's continuation and another call's: none of
      // them tells the sender which it was.
      if (!good) throw invalid('it was not issued to this caller for this call')
      const { s, e } = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Payload
      if (clock() > e) throw invalid('it has expired: send the request again without it')
      return s ?? undefined
    },
  }
}

interface Payload {
  /** The tool's own `requestState`. */
  readonly s: string | null
  /** Expiry, ms since the epoch. */
  readonly e: number
}

function invalid(why: string): CallproofError {
  return new CallproofError(
    'ERR_INVALID_CONTINUATION',
    `this Multi Round-Trip continuation is refused: ${why}`,
  )
}
