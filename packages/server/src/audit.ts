/**
 * Audit events: one per decision, allowed or refused.
 *
 * An event names who called (subject, client, key thumbprint), what (JSON-RPC method, tool, the
 * digest of the arguments) and what callproof decided, with a reason code. It never carries the
 * access token, the proof or the arguments themselves: an audit log is read by more people than
 * the data it describes, and a token in a log is a token anyone with the log can replay until it
 * expires.
 *
 * @module
 */
import { closeSync, createWriteStream, openSync } from 'node:fs'
import type { WriteStream } from 'node:fs'
import { CallproofError } from '@callproof/core'

/** One decision. Only verified facts name the caller: a refused request before the token was
 * verified has no `sub`, `clientId` or `jkt`, so a forged token cannot frame someone else. */
export interface AuditEvent {
  /** ISO 8601 time of the decision. */
  readonly time: string
  /** A random id per HTTP request, also sent back as `x-request-id`. */
  readonly requestId: string
  /** `allowed` when the request was handed to the MCP transport. */
  readonly decision: 'allowed' | 'refused'
  /** `allowed` / `public`, or the refusal's `CallproofErrorCode` (e.g. `ERR_REPLAY`). */
  readonly reason: string
  /** The HTTP status of a refusal (absent when allowed). */
  readonly status?: number
  /** HTTP method. */
  readonly httpMethod: string
  /** JSON-RPC method of the body, when one was parsed. */
  readonly method?: string
  /**
   * Tool name for `tools/call`, at most {@link AUDIT_TEXT_MAX} characters: a longer one (only an
   * unverified request can carry one; the SDK refuses such names) is cut, and `toolLength` and
   * `toolDigest` say what it was.
   */
  readonly tool?: string
  /** The length of a tool name that was cut. */
  readonly toolLength?: number
  /** base64url SHA-256 of the UTF-8 of a tool name that was cut. */
  readonly toolDigest?: string
  /**
   * How many refusals of unverified requests were not written just before this event, because
   * they came faster than the audit takes them (see {@link createRefusalSampler}).
   */
  readonly suppressed?: number
  /** base64url SHA-256 of the RFC 8785 form of the arguments (the proof's `mcp.args`). */
  readonly argsDigest?: string
  readonly sub?: string
  readonly clientId?: string
  readonly jkt?: string
  /** The `jti` of the access token (identifies the token without revealing it). */
  readonly tokenId?: string
  /** The `jti` of a consumed one-time approval token. */
  readonly approvalId?: string
  /**
   * For a downstream credential (`createDownstreamCredentials`): the service it was for. `reason`
   * is then `exchanged`, `cached` or the `DownstreamCredentialErrorCode` of a refusal.
   */
  readonly downstream?: string
  /**
   * For an allowed tool call: the downstream services the tool declares it calls on its caller's
   * behalf (`register(name, { downstream })`), so the audit says which other APIs a call may
   * reach as that caller.
   */
  readonly uses?: readonly string[]
}

/** The longest tool name or method an audit event holds as it was sent. */
export const AUDIT_TEXT_MAX = 128

/**
 * Decides which refusals of *unverified* requests are written: at most `perSecond` a second
 * (a token bucket of that size), so that a flood of anonymous requests cannot fill the disk or
 * drown the events that matter. The next one written says how many were left out
 * (`suppressed`). Refusals that name a verified caller (after the verifier) and every allowed
 * call are always written.
 *
 * @example
 * ```ts
 * const sampler = createRefusalSampler({ perSecond: 100, clock: Date.now })
 * if (sampler.admit()) await sink.write({ ...event, ...sampler.take() })
 * ```
 */
export function createRefusalSampler(options: { perSecond: number; clock: () => number }): {
  /** Whether this refusal is written; counts it as suppressed if not. */
  admit(): boolean
  /** `{ suppressed: n }` for the event being written when some were left out, and resets it. */
  take(): { suppressed?: number }
} {
  const { perSecond, clock } = options
  let tokens = perSecond
  let at = clock()
  let suppressed = 0
  return {
    admit() {
      const now = clock()
      tokens = Math.min(perSecond, tokens + ((now - at) / 1000) * perSecond)
      at = now
      if (tokens >= 1) {
        tokens -= 1
        return true
      }
      suppressed++
      return false
    },
    take() {
      if (suppressed === 0) return {}
      const out = { suppressed }
      suppressed = 0
      return out
    },
  }
}

/** Receives audit events. A sink that throws on an `allowed` event stops the call (no audit, no
 * call); errors on `refused` events are ignored because the request is refused anyway. */
export interface AuditSink {
  write(event: AuditEvent): void | Promise<void>
}

/** Something with a `write(string)` method, such as `process.stdout` or a `fs.WriteStream`. */
export interface TextWritable {
  write(chunk: string): unknown
}

/**
 * A sink that writes one JSON object per line, to a writable stream or appended to a file. A
 * file is opened at once: a path that cannot be opened throws ERR_INVALID_OPTIONS here.
 *
 * @example
 * ```ts
 * createCallproof({ ..., audit: jsonLinesSink('/var/log/callproof/audit.jsonl') })
 * createCallproof({ ..., audit: jsonLinesSink(process.stdout) })
 * ```
 * @see https://jsonlines.org/
 */
export function jsonLinesSink(
  target: TextWritable | string,
): AuditSink & { close(): Promise<void> } {
  if (typeof target !== 'string') {
    return {
      write(event) {
        target.write(`${JSON.stringify(event)}\n`)
      },
      close: () => Promise.resolve(),
    }
  }
  // Opened now, so that a path that cannot work (missing directory, no permission) stops the
  // server at start with a clear error, instead of starting and then refusing every call it
  // cannot audit.
  let fd: number
  try {
    fd = openSync(target, 'a')
  } catch (cause) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `the audit file ${target} cannot be opened for appending: ${(cause as Error).message}`,
      { cause },
    )
  }
  let file: WriteStream
  try {
    file = createWriteStream(target, { fd, encoding: 'utf8' })
  } catch (error) {
    closeSync(fd)
    throw error
  }
  // A file that fails later (a full disk) must not crash the process through an unhandled
  // 'error' event; it makes every later write throw instead, and the middleware then refuses
  // calls it cannot audit.
  let failure: Error | undefined
  file.on('error', (error) => {
    failure = error
  })
  return {
    write(event) {
      if (failure !== undefined) {
        throw new Error(`audit file ${target} failed: ${failure.message}`, { cause: failure })
      }
      file.write(`${JSON.stringify(event)}\n`)
    },
    close() {
      if (failure !== undefined || file.destroyed) return Promise.resolve()
      return new Promise((resolve, reject) => {
        file.end((error?: Error | null) => (error ? reject(error) : resolve()))
      })
    },
  }
}

/**
 * A sink that keeps events in an array: for tests and for the `callproof audit` demo views.
 *
 * @example
 * ```ts
 * const audit = memorySink()
 * createCallproof({ ..., audit })
 * audit.events.at(-1)?.reason // 'ERR_REPLAY'
 * ```
 */
export function memorySink(): AuditSink & { readonly events: AuditEvent[] } {
  const events: AuditEvent[] = []
  return {
    events,
    write(event) {
      events.push(event)
    },
  }
}
