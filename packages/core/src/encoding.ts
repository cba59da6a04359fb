/**
 * Small Web-platform helpers shared by the modules (not exported from the package).
 *
 * @module
 */

import { sha256 } from '@noble/hashes/sha2.js'
import { base64url } from 'jose'

/**
 * SHA-256, synchronously, from @noble/hashes (audited, pure JavaScript, runs on every Web
 * platform). `crypto.subtle.digest` is asynchronous and on Node costs a thread-pool round trip
 * (about 20 µs of CPU) even for a few hundred bytes; the small inputs hashed on every call (the
 * argument digest, `ath`, thumbprints) are hashed here instead. Never hand-rolled.
 */
export { sha256 }

const encoder = new TextEncoder()

/**
 * Inputs up to this size are hashed in JavaScript; larger ones by Web Crypto, which runs off the
 * event loop (a 1 MiB body hashed synchronously would stall every other request for milliseconds).
 */
const SMALL_INPUT = 16 * 1024

/**
 * Scratch space for the UTF-8 bytes of small inputs: the hash is computed synchronously and keeps
 * no reference to its input, so one buffer serves every call (no allocation per call).
 */
const scratch = new Uint8Array(SMALL_INPUT)

/** base64url (no padding) of SHA-256 over the UTF-8 bytes of `text`. */
export async function sha256Base64url(text: string): Promise<string> {
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so this text surely fits the scratch buffer.
  if (text.length * 3 <= SMALL_INPUT) {
    const { written } = encoder.encodeInto(text, scratch)
    return base64url.encode(sha256(scratch.subarray(0, written)))
  }
  const bytes = encoder.encode(text)
  if (bytes.length <= SMALL_INPUT) return base64url.encode(sha256(bytes))
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Compact JWS shape: three base64url segments. Checked before any parsing, as a cheap gate. */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** At most 120 characters of an untrusted value, for an error message (never unbounded). */
export function short(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  return text.length > 120 ? `${text.slice(0, 120)}…` : text
}
