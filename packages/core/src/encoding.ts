/**
 * Small Web-platform helpers shared by the modules (not exported from the package).
 *
 * @module
 */

import { base64url } from 'jose'

const encoder = new TextEncoder()

/** base64url (no padding) of SHA-256 over the UTF-8 bytes of `text`. */
export async function sha256Base64url(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(text))
  return base64url.encode(new Uint8Array(digest))
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Compact JWS shape: three base64url segments. Checked before any parsing, as a cheap gate. */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
