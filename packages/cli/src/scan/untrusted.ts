/**
 * Text the scanned server chose (tool names, error descriptions, challenge headers) on its way to
 * a terminal. A hostile server could otherwise rewrite the report with escape sequences, hide a
 * word behind a bidi override or a zero-width character, or flood the screen.
 *
 * Kept local to the scanner on purpose: a shared helper for the whole CLI can replace
 * {@link escapeUntrustedForScan} without changing any caller.
 */

/** How many characters of one untrusted value are printed, by default. */
export const UNTRUSTED_MAX_LENGTH = 200

// C0 and C1 controls and DEL; the bidi embeddings, overrides, isolates and marks; zero-width
// characters, the BOM and the line/paragraph separators that terminals treat as line breaks.
const INVISIBLE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\u3164\ufeff\ufff9-\ufffb]/gu

/**
 * Returns `text` with every control, bidi and zero-width character replaced by a visible
 * `\u{…}` escape, and cut to `max` characters (with `…` when cut). The result is safe to print
 * on one terminal line.
 *
 * @example
 * ```ts
 * escapeUntrustedForScan('ok\u001b[2Jwiped') // 'ok\\u{1b}[2Jwiped'
 * escapeUntrustedForScan('x'.repeat(500), 10) // 'xxxxxxxxx…'
 * ```
 */
export function escapeUntrustedForScan(text: unknown, max = UNTRUSTED_MAX_LENGTH): string {
  const raw = typeof text === 'string' ? text : String(text)
  // Cut before escaping (a huge value costs nothing more), then again after: escapes are longer.
  const escaped = [...raw.slice(0, max * 2)]
    .join('')
    .replace(INVISIBLE, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`)
  const chars = [...escaped]
  return chars.length > max || raw.length > max * 2
    ? `${chars.slice(0, Math.max(0, max - 1)).join('')}…`
    : escaped
}
