import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

/** A piece of HTML that is already safe; only the page builders produce it. */
export interface Html {
  readonly html: string
}

/** Template tag: interpolated values are escaped unless they are {@link Html}. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? ''
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '')
  })
  return { html: out }
}

function render(value: unknown): string {
  if (value === undefined || value === null || value === false) return ''
  if (Array.isArray(value)) return value.map(render).join('')
  if (typeof value === 'object' && 'html' in value) return String((value as Html).html)
  return escapeHtml(value)
}

// One small stylesheet, inline, allowed by its hash: no external assets, no 'unsafe-inline'.
const STYLE = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { max-width: 34rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; }
.banner { border: 2px solid #b45309; padding: .25rem .75rem; font-size: .9rem; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { font-size: 1rem; padding: .5rem; width: 100%; box-sizing: border-box; }
.actions { display: flex; gap: 1rem; margin-top: 1.5rem; }
button { font-size: 1rem; padding: .6rem 1.4rem; cursor: pointer; }
button.primary { font-weight: 700; }
.error { border-left: 4px solid #b91c1c; padding: .25rem .75rem; }
dl.args { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.args dt { font-weight: 600; }
dl.args dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
code { overflow-wrap: anywhere; }
.hidden-char { border: 1px solid #b45309; border-radius: 3px; padding: 0 .15rem; font-size: .8em; }
.warning { border-left: 4px solid #b45309; padding: .25rem .75rem; }
.hint { font-size: .9rem; }
`
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64')
// Built as one string so that no formatter can put whitespace inside the element and break the
// hash (the browser hashes the element's exact text).
const STYLE_TAG: Html = { html: '<style>' + STYLE + '</style>' }

/** What a page needs besides its body. */
export interface PageOptions {
  title: string
  body: Html
  /** Where the page's forms may lead after redirects (the client's redirect URI origin). */
  formTargets?: readonly string[]
  status?: number
}

/** The origin (or, for a private-use scheme, the scheme) a redirect URI needs in form-action. */
export function formTargetFor(redirectUri: unknown): string | undefined {
  if (typeof redirectUri !== 'string') return undefined
  const url = URL.parse(redirectUri)
  if (!url) return undefined
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin
  return url.protocol
}

/**
 * The security headers of every page: a CSP that allows no script at all, no framing
 * (clickjacking an Approve button is the obvious attack on a consent page), no caching.
 */
export function pageHeaders(formTargets: readonly string[] = []): Record<string, string> {
  // Browsers apply form-action to the redirects that follow a form post too, so the client's
  // redirect URI must be allowed or the final hop back to the client would be blocked.
  const targets = ["'self'", ...formTargets].join(' ')
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': [
      "default-src 'none'",
      `style-src 'sha256-${STYLE_HASH}'`,
      `form-action ${targets}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    // Not no-referrer: with it Chromium sends `Origin: null` on the form posts, which the
    // same-origin check must refuse.
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  }
}

/** The complete HTML document around a page body. */
export function pageHtml(title: string, body: Html): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · callproof dev authorization server</title>
        ${STYLE_TAG}
      </head>
      <body>
        <p class="banner" role="note">
          <strong>Development server.</strong> Test users and codes are public. Never use it in
          production.
        </p>
        <main>${body}</main>
      </body>
    </html> `.html
}

/** Sends a complete page with {@link pageHeaders}. */
export function sendPage(res: ServerResponse, options: PageOptions): void {
  res.statusCode = options.status ?? 200
  for (const [name, value] of Object.entries(pageHeaders(options.formTargets))) {
    res.setHeader(name, value)
  }
  res.end(pageHtml(options.title, options.body))
}
