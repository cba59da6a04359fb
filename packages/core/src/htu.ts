/**
 * The `htu` rules of a DPoP proof: how a URL is normalized for comparison, and what a proof's
 * `htu` must not carry (query, fragment, userinfo).
 *
 * @module
 */

import { short } from './encoding.js'
import { CallproofError } from './errors.js'

/**
 * `url` as an `htu` is compared: scheme and host lower case, default port dropped, percent
 * encoding normalized (RFC 3986 §6.2.2), dot segments resolved, no userinfo, query or fragment.
 * Throws ERR_INVALID_PROOF for something that is not an absolute URL.
 *
 * @example
 * ```ts
 * normalizeHtu('HTTPS://Drive.Example:443/mcp?x=1') // 'https://drive.example/mcp'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
 */
export function normalizeHtu(url: string | URL): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (cause) {
    throw new CallproofError('ERR_INVALID_PROOF', 'htu is not an absolute URL', { cause })
  }
  const path = parsed.pathname.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${hex.toUpperCase()}`
  })
  return `${parsed.protocol}//${parsed.host}${path}`
}

/**
 * True when `url`'s authority has userinfo (`user@`, `user:pass@`, or an empty `@`), read as the
 * WHATWG URL parser reads it: leading C0 controls and spaces dropped, tabs and newlines removed
 * anywhere, and a backslash ending the authority like a slash.
 */
function hasUserinfo(url: string): boolean {
  // eslint-disable-next-line no-control-regex
  const cleaned = url.replace(/[\t\n\r]/g, '').replace(/^[\x00-\x20]+/, '')
  return /^[A-Za-z][A-Za-z0-9+.-]*:[\\/]*[^\\/?#]*@/.test(cleaned)
}

function invalid(message: string): CallproofError {
  return new CallproofError('ERR_INVALID_PROOF', message)
}

/**
 * Checks a proof's `htu` claim (untrusted) against the URL the request was sent to, `expected`:
 * no query or fragment, no userinfo, and equal after {@link normalizeHtu}. An honest client sends
 * `expected` or its normalized form exactly, so only anything else is parsed. `normalized` is
 * `normalizeHtu(expected)` when the caller already has it. Throws ERR_INVALID_PROOF.
 */
export function checkHtu(htu: unknown, expected: string, normalized?: string): void {
  if (typeof htu !== 'string') throw invalid('proof htu is missing')
  if (htu.includes('?') || htu.includes('#')) {
    throw invalid('proof htu must not carry a query or fragment')
  }
  if (hasUserinfo(htu)) {
    // http://evil@host/mcp normalizes to http://host/mcp; refused rather than ignored, so that a
    // proof cannot differ from its canonical form (and no reader of logs is misled by it).
    throw invalid('proof htu must not carry userinfo')
  }
  const expectedHtu = normalized ?? normalizeHtu(expected)
  if (htu === expectedHtu || htu === expected) return
  let actual: string
  try {
    actual = normalizeHtu(htu)
  } catch {
    throw invalid(`proof htu ${short(htu)} is not an absolute URL`)
  }
  if (actual !== expectedHtu) {
    throw invalid(`proof htu ${short(htu)} does not match request URL ${expectedHtu}`)
  }
}
