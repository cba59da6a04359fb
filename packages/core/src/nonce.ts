/**
 * Server-provided DPoP nonces (RFC 9449 §8 and §9) without server-side state.
 *
 * A nonce is `base64url(window || mac)`: `window` is the 8-byte big-endian number of the current
 * time window (`floor(now / windowSeconds)`), `mac` the first 16 bytes of
 * HMAC-SHA-256(secret, label || window). Any instance that holds the same secret computes the same
 * nonce for the same window, so instances behind one load balancer accept each other's nonces
 * without sharing a store, and nothing needs to be remembered per client.
 *
 * A nonce is accepted while its window is the current or the previous one, so it lives between
 * one and two windows. Requiring nonces therefore bounds how long a proof can be used at all —
 * and how long the replay store has to remember it — to at most two windows, however far in the
 * future the client (or malware on it) set `iat`: a proof minted in advance carries no nonce the
 * server has not yet issued.
 *
 * @module
 */

import { CallproofError } from './errors.js'

/**
 * Options of {@link createNonceSource}.
 *
 * @example
 * ```ts
 * const options: NonceSourceOptions = { secret: crypto.getRandomValues(new Uint8Array(32)), windowSeconds: 30 }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-9
 */
export interface NonceSourceOptions {
  /**
   * The HMAC key shared by every instance that serves the same resource: at least 32 bytes,
   * random (for example `crypto.getRandomValues(new Uint8Array(32))`, stored as a secret). A
   * string is taken as its UTF-8 bytes. Whoever knows it can mint nonces for any window.
   */
  secret: Uint8Array | ArrayBuffer | string
  /**
   * Length of one nonce window in seconds, an integer from 1 to 3600 (default 30). A nonce is
   * accepted during its own window and the next one; the replay window is at most twice this.
   */
  windowSeconds?: number
  /** Milliseconds since the epoch (default `Date.now`). Every instance's clock should be synchronised. */
  clock?: () => number
}

/**
 * A source of stateless, time-windowed DPoP nonces, as returned by {@link createNonceSource}.
 * Structurally it is core's `NonceSource` (`current()` and `check()`), plus {@link expiresAt}.
 *
 * @example
 * ```ts
 * const nonce: WindowedNonceSource = createNonceSource({ secret })
 * createVerifier({ ...options, nonce })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 */
export interface WindowedNonceSource {
  /** The nonce of the current window, to send as `DPoP-Nonce` (RFC 9449 §8.1). */
  current(): Promise<string>
  /**
   * True only for a nonce of the current or the previous window made with this secret. Anything
   * else — missing, malformed, wrong length, forged, another secret, older, from the future — is
   * false, and the caller answers 401 `use_dpop_nonce` with {@link current}.
   */
  check(nonce: string | undefined): Promise<boolean>
  /**
   * The moment (ms since the epoch) from which {@link check} stops accepting `nonce`, or
   * `undefined` when the nonce is not well formed. A replay store entry for a proof carrying this
   * nonce need not be kept longer than this plus the verifier's clock skew (the skew covers a
   * store whose clock runs ahead).
   */
  expiresAt(nonce: string): number | undefined
  /** The configured window length in seconds. */
  readonly windowSeconds: number
}

/** Domain separation: a MAC made with this secret for another purpose is never a valid nonce. */
const LABEL = new TextEncoder().encode('callproof dpop-nonce v1\0')
const COUNTER_BYTES = 8
const MAC_BYTES = 16
/** 24 bytes encode to exactly 32 base64url characters, so every nonce has one spelling only. */
const NONCE_LENGTH = 32
const NONCE_SYNTAX = /^[A-Za-z0-9_-]{32}$/
const MIN_SECRET_BYTES = 32

/**
 * Creates a stateless nonce source keyed by a shared secret.
 *
 * Options are checked here, so a short secret or a bad window fails at start-up, not on the first
 * request. Nonces are compared in constant time.
 *
 * @example
 * ```ts
 * const nonce = createNonceSource({ secret: process.env.CALLPROOF_NONCE_SECRET! })
 * response.headers.set('DPoP-Nonce', await nonce.current())
 * if (!(await nonce.check(proof.nonce))) throw new UseNonceError(await nonce.current())
 * ```
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8 (nonces)
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-9 (resource server nonces)
 */
export function createNonceSource(options: NonceSourceOptions): WindowedNonceSource {
  if (typeof options !== 'object' || options === null) {
    throw invalid('createNonceSource expects an options object')
  }
  const secret = secretBytes(options.secret)
  const windowSeconds = options.windowSeconds ?? 30
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > 3600) {
    throw invalid(
      `nonce windowSeconds must be an integer from 1 to 3600, got ${String(windowSeconds)}`,
    )
  }
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw invalid('nonce clock must be a function returning ms')
  const windowMs = windowSeconds * 1000

  const key = crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ])
  // MACs of the last few windows: current() and check() would otherwise run one HMAC per request.
  const macs = new Map<number, Promise<Uint8Array>>()

  function windowAt(now: number): number {
    if (!Number.isFinite(now)) throw new TypeError(`nonce clock returned ${String(now)}`)
    return Math.floor(now / windowMs)
  }

  function macFor(window: number): Promise<Uint8Array> {
    let mac = macs.get(window)
    if (mac === undefined) {
      const data = new Uint8Array(LABEL.length + COUNTER_BYTES)
      data.set(LABEL)
      new DataView(data.buffer).setBigUint64(LABEL.length, BigInt(window))
      mac = key
        .then((k) => crypto.subtle.sign('HMAC', k, data))
        .then((full) => new Uint8Array(full, 0, MAC_BYTES))
      macs.set(window, mac)
      // Keep only windows that can still be current or previous.
      for (const w of macs.keys()) if (w < window - 2 || w > window + 1) macs.delete(w)
    }
    return mac
  }

  return {
    windowSeconds,

    async current() {
      const window = windowAt(clock())
      const bytes = new Uint8Array(COUNTER_BYTES + MAC_BYTES)
      new DataView(bytes.buffer).setBigUint64(0, BigInt(window))
      bytes.set(await macFor(window), COUNTER_BYTES)
      return toBase64Url(bytes)
    },

    async check(nonce) {
      const parsed = parse(nonce)
      if (parsed === undefined) return false
      const now = windowAt(clock())
      // The window number is public (it is in the nonce), so refusing on it early leaks nothing.
      if (parsed.window !== now && parsed.window !== now - 1) return false
      return constantTimeEqual(parsed.mac, await macFor(parsed.window))
    },

    expiresAt(nonce) {
      const parsed = parse(nonce)
      return parsed === undefined ? undefined : (parsed.window + 2) * windowMs
    },
  }
}

function parse(nonce: unknown): { window: number; mac: Uint8Array } | undefined {
  if (typeof nonce !== 'string' || nonce.length !== NONCE_LENGTH || !NONCE_SYNTAX.test(nonce)) {
    return undefined
  }
  const bytes = fromBase64Url(nonce)
  const window = new DataView(bytes.buffer).getBigUint64(0)
  if (window > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
  return { window: Number(window), mac: bytes.subarray(COUNTER_BYTES) }
}

function secretBytes(secret: unknown): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>
  if (typeof secret === 'string') bytes = new TextEncoder().encode(secret)
  else if (secret instanceof ArrayBuffer) bytes = new Uint8Array(secret.slice(0))
  else if (secret instanceof Uint8Array) bytes = new Uint8Array(secret)
  else throw invalid('nonce secret must be a Uint8Array, an ArrayBuffer or a string')
  if (bytes.byteLength < MIN_SECRET_BYTES) {
    // The length only, never the secret.
    throw invalid(
      `nonce secret must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes.byteLength}`,
    )
  }
  return bytes
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Encodes a multiple of 3 bytes (no padding needed). */
function toBase64Url(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]!
    out += ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!
  }
  return out
}

/** Decodes a string already checked against {@link NONCE_SYNTAX} (a multiple of 4 characters). */
function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array((text.length / 4) * 3)
  for (let i = 0, j = 0; i < text.length; i += 4, j += 3) {
    const n =
      (ALPHABET.indexOf(text[i]!) << 18) |
      (ALPHABET.indexOf(text[i + 1]!) << 12) |
      (ALPHABET.indexOf(text[i + 2]!) << 6) |
      ALPHABET.indexOf(text[i + 3]!)
    bytes[j] = (n >> 16) & 255
    bytes[j + 1] = (n >> 8) & 255
    bytes[j + 2] = n & 255
  }
  return bytes
}

function invalid(message: string): CallproofError {
  return new CallproofError('ERR_INVALID_OPTIONS', message)
}
