/**
 * The one way a value that came from outside (a server's answer, a token's claim, an audit field,
 * a tool name) reaches the terminal: escaped and bounded.
 */

/** Options of {@link safeText}. */
export interface SafeTextOptions {
  /**
   * At most this many characters of escaped text are shown; the rest is replaced by
   * `…(+N chars)`, N counting the characters of the value left out. Default 200.
   */
  readonly max?: number
  /**
   * When the value must be shortened, end at the last space within the limit (when there is one
   * in the last fifth of it) rather than in the middle of a word: for sentences (a server's
   * reason), not for identifiers.
   */
  readonly atWord?: boolean
}

/** The default cap of {@link safeText}: a field on one line of a table. */
export const SAFE_TEXT_MAX = 200

/*
 * What a terminal (or a reader) would not show as itself:
 * - Cc: C0 controls (ESC starts cursor movement, title changes, conceal ESC[8m), DEL, C1 controls
 *   (U+009B is a one-character CSI on many terminals);
 * - Cf: format characters, which hold the bidi controls (U+202A–202E, U+2066–2069, U+200E/F,
 *   U+061C: "Trojan Source" reordering), the zero-width characters (U+200B–200D, U+2060, U+FEFF)
 *   and the soft hyphen;
 * - Zl, Zp: line and paragraph separators (a line break to some terminals and viewers);
 * - Cs: lone surrogates (shown as U+FFFD, so two different values would look alike);
 * - Default_Ignorable_Code_Point: what renders as nothing (Hangul fillers, variation selectors,
 *   tag characters), so `bob` and `bob` + an invisible character look different;
 * - Zs other than the space: no-break and sized spaces that pass for an ordinary one.
 * The backslash is escaped too, so that a value holding the text `\u{1b}` cannot pass for an
 * escaped ESC.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Zs}\\]/u

const NAMED: Readonly<Record<string, string>> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\\': '\\\\',
  ' ': ' ',
}

function escapeCharacter(character: string, json: boolean): string {
  // In JSON every backslash already starts one of JSON's own escapes: no value can forge ours.
  if (!UNSAFE.test(character) || (json && character === '\\')) return character
  const named = NAMED[character]
  if (named !== undefined) return named
  return `\\u{${(character.codePointAt(0) ?? 0).toString(16)}}`
}

function asText(value: unknown): { text: string; json: boolean } {
  if (typeof value === 'string') return { text: value, json: false }
  try {
    // JSON for objects, so that a claim reads as what was sent; String for what JSON refuses.
    const json = JSON.stringify(value) as string | undefined
    if (json !== undefined) return { text: json, json: true }
  } catch {
    // a cycle or a BigInt: shown as String() below
  }
  return { text: String(value), json: false }
}

/**
 * `value` as one line that is safe to print: every control, bidi, zero-width or otherwise
 * invisible character is shown as an escape (`\n`, `\t`, `\\`, `\u{1b}`, `\u{202e}`), and the
 * result is at most `max` characters plus an explicit `…(+N chars)` marker. The output never
 * holds a newline or any other control character: a caller that wants several lines joins
 * several calls. Non-string values are shown as JSON (whose own backslash escapes are kept).
 *
 * @example
 * ```ts
 * safeText('ok\n\u001b[2J✓ admin') // 'ok\\n\\u{1b}[2J✓ admin'
 * safeText('x'.repeat(1000), { max: 10 }) // 'xxxxxxxxxx…(+990 chars)'
 * safeText('the proof was already used', { max: 24, atWord: true }) // 'the proof was already…(+4 chars)'
 * ```
 * @see https://www.unicode.org/reports/tr9/ (bidirectional controls)
 * @see https://trojansource.codes/ (bidi reordering attacks on what a reader sees)
 */
export function safeText(value: unknown, options: SafeTextOptions = {}): string {
  const max = Math.max(0, Math.floor(options.max ?? SAFE_TEXT_MAX))
  const { text, json } = asText(value)
  let out = ''
  let index = 0
  // Where the last space was shown: the output's length before it, the input's index after it.
  let space: { out: number; index: number } | undefined
  for (const character of text) {
    const shown = escapeCharacter(character, json)
    if (out.length + shown.length > max) break
    if (character === ' ') space = { out: out.length, index: index + 1 }
    out += shown
    index += character.length
  }
  if (index >= text.length) return out
  if (options.atWord === true && space !== undefined && space.out >= max * 0.8) {
    out = out.slice(0, space.out)
    index = space.index
  }
  let left = 0
  for (const _ of text.slice(index)) left++
  return `${out}…(+${left} chars)`
}

/**
 * `text` with every character a reader would not see as itself written as an escape
 * (`\u{202e}`, `\u{1b}`), as {@link safeText} does, but keeping line breaks, tabs, spaces and
 * backslashes as they are and without shortening: for text shown whole in a `<pre>` (a page's
 * `textContent` cannot run anything, yet bidi controls could still reorder what is read).
 *
 * @example
 * ```ts
 * showInvisible('a\u202eb\nc') // 'a\\u{202e}b\nc'
 * ```
 */
export function showInvisible(text: string): string {
  return text.replace(new RegExp(UNSAFE.source, 'gu'), (character) =>
    character === '\n' || character === '\t' || character === ' ' || character === '\\'
      ? character
      : escapeCharacter(character, false),
  )
}

const UNSAFE_IN_JSON = new RegExp(UNSAFE.source.replace('\\\\]', ']'), 'gu')

/**
 * `value` as one line of JSON for `--json` output: the same JSON, with every character that
 * {@link safeText} escapes written as a JSON `\uXXXX` escape (JSON.stringify leaves C1 controls,
 * bidi and zero-width characters raw). It parses back to the same value; it is not shortened.
 * `indent` as JSON.stringify's: the newlines it adds are JSON's, outside every string.
 *
 * @example
 * ```ts
 * safeJson({ tool: 'a\u202eb' }) // '{"tool":"a\\u202eb"}'
 * ```
 */
export function safeJson(value: unknown, indent?: number): string {
  const json = JSON.stringify(value, null, indent) ?? 'null'
  return json.replace(UNSAFE_IN_JSON, (character) =>
    // JSON.stringify escapes every C0 control inside strings: a raw space or newline is layout.
    character === ' ' || character === '\n'
      ? character
      : Array.from(
          { length: character.length },
          (_, i) => `\\u${character.charCodeAt(i).toString(16).padStart(4, '0')}`,
        ).join(''),
  )
}
