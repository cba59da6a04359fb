import { html } from './layout.js'
import type { Html } from './layout.js'

/*
 * Characters a reader of the page cannot see as themselves: controls (Cc), format characters
 * (Cf: the bidi controls U+202A–202E, U+2066–2069, U+200E/F, U+061C that reorder what is shown,
 * the zero-width characters U+200B–200D, U+2060, U+FEFF, the soft hyphen), line and paragraph
 * separators, lone surrogates, what renders as nothing (Default_Ignorable_Code_Point: Hangul
 * fillers, variation selectors, tag characters) and the spaces that pass for an ordinary one.
 * `bob` and `bob` + U+200B are two arguments with two digests: the page must show two values.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Zs}]/gu

/** Whether `value` holds a character {@link visible} would mark. */
export function hasHiddenCharacters(value: unknown): boolean {
  if (typeof value !== 'string') return false
  HIDDEN.lastIndex = 0
  for (const match of value.matchAll(HIDDEN)) if (match[0] !== ' ') return true
  return false
}

/** Whether any string in `values` (argument values and names, recursively) holds one. */
export function anyHidden(value: unknown, depth = 0): boolean {
  if (depth > 20) return false
  if (typeof value === 'string') return hasHiddenCharacters(value)
  if (Array.isArray(value)) return value.some((v) => anyHidden(v, depth + 1))
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).some(([k, v]) => hasHiddenCharacters(k) || anyHidden(v, depth + 1))
  }
  return false
}

function codePoint(character: string): string {
  return `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`
}

/**
 * `value` as HTML in which every hidden character is replaced by a visible, labelled marker
 * (`⟨U+200B⟩`), so that two values that differ only in such characters look different. Text is
 * escaped as everywhere else on the pages.
 */
export function visible(value: unknown): Html {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  const parts: Html[] = []
  let last = 0
  for (const match of text.matchAll(HIDDEN)) {
    const character = match[0]
    if (character === ' ') continue
    const at = match.index
    parts.push(html`${text.slice(last, at)}`)
    const label = codePoint(character)
    parts.push(
      html`<span
        class="hidden-char"
        data-hidden-char="${label}"
        title="invisible or direction-changing character ${label}"
        >⟨${label}⟩</span
      >`,
    )
    last = at + character.length
  }
  parts.push(html`${text.slice(last)}`)
  return html`${parts}`
}

/** The warning shown above values that hold hidden characters. */
export function hiddenWarning(what: string): Html {
  return html`<p class="warning" role="alert" data-hidden-warning>
    Warning: ${what} hold invisible or direction-changing characters, shown here as
    <code>⟨U+…⟩</code>. A value with such a character is a different value from the one it looks
    like (<code>bob</code> is not <code>bob⟨U+200B⟩</code>). Approve only if you expected them.
  </p>`
}
