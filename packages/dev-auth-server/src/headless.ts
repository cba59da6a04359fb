import { isLoopbackHost } from '@callproof/core'
import { DEV_REDIRECT_URI } from './server.js'
import { DEV_MFA_CODE, findUser } from './users.js'

/**
 * How a client gets the user through the authorization endpoint. `@callproof/client` defines the
 * same interface; this one is structurally identical so that {@link devInteraction} plugs in.
 */
export interface Interaction {
  /** The redirect URI the client registers and sends. */
  redirectUri(): string | Promise<string>
  /**
   * Takes the user through `url` (the authorization request) and resolves with the URL the
   * authorization server redirected to: `code`, `state` and `iss`, or `error`.
   */
  authorize(
    url: URL,
    context: {
      reason: 'authorize' | 'scope' | 'step_up' | 'approval'
      authorizationDetails?: unknown[]
    },
  ): Promise<URL>
}

/** Options of {@link devInteraction}. */
export interface DevInteractionOptions {
  /** The test user to sign in as (`alice`, `bob`). */
  user: 'alice' | 'bob' | (string & {})
  /** The password to type; defaults to the user's published development password. */
  password?: string
  /** The one-time code to type when a step-up asks for it; defaults to the development code. */
  mfaCode?: string
  /** Press Allow (default) or Deny on the consent page. */
  consent?: boolean
  /** Press Approve (default) or Deny on the per-call approval page. */
  approve?: boolean
  /** The redirect URI to report; defaults to {@link DEV_REDIRECT_URI}. Nothing needs to listen on it. */
  redirectUri?: string
  /** Upper bound on pages and redirects per authorization (default 25). */
  maxSteps?: number
}

/** A page the driver saw, for tests that want to check what the user was shown. */
export interface SeenPage {
  readonly form: 'login' | 'mfa' | 'consent' | 'approval'
  readonly url: string
  readonly text: string
}

/** The headless interaction, with a record of the pages it went through. */
export interface DevInteraction extends Interaction {
  /** Every page filled in so far, oldest first. */
  readonly pages: readonly SeenPage[]
}

/** Thrown when the pages refuse the input (wrong password, wrong code) or answer unexpectedly. */
export class DevInteractionError extends Error {
  override readonly name = 'DevInteractionError'
}

interface StoredCookie {
  value: string
  path: string
}

/**
 * The headless path for automated tests and demos: signs in as a development test user by driving
 * the REAL pages with `fetch` (cookies, form posts, redirects), exactly as a person would, until
 * the authorization server redirects to the redirect URI, and resolves with that URL. Nothing on
 * the server is bypassed, so tests exercise the same forms and checks as a browser.
 *
 * One instance keeps one cookie jar, like one browser: the sign-in session survives between calls,
 * so `max_age`, `prompt=login` and step-up behave as they would for a person.
 *
 * Development only: it refuses any authorization URL that is not on a loopback host.
 *
 * @example
 * ```ts
 * const interaction = devInteraction({ user: 'alice' })
 * const callback = await interaction.authorize(authorizationUrl, { reason: 'authorize' })
 * callback.searchParams.get('code')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3 loopback redirect URIs
 */
export function devInteraction(options: DevInteractionOptions): DevInteraction {
  const redirect = options.redirectUri ?? DEV_REDIRECT_URI
  const maxSteps = options.maxSteps ?? 25
  const jar = new Map<string, Map<string, StoredCookie>>()
  const pages: SeenPage[] = []

  function cookieHeader(url: URL): string | undefined {
    const cookies = jar.get(url.origin)
    if (!cookies) return undefined
    const pairs = [...cookies]
      .filter(
        ([, c]) =>
          url.pathname === c.path ||
          url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map(([name, c]) => `${name}=${c.value}`)
    return pairs.length ? pairs.join('; ') : undefined
  }

  function storeCookies(url: URL, response: Response): void {
    let cookies = jar.get(url.origin)
    if (!cookies) jar.set(url.origin, (cookies = new Map()))
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 1) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = '/'
      let expired = value === ''
      for (const attribute of attributes) {
        const [key = '', val = ''] = attribute.split('=')
        const k = key.trim().toLowerCase()
        if (k === 'path') path = val.trim() || '/'
        if (k === 'max-age' && Number(val) <= 0) expired = true
        if (k === 'expires' && Date.parse(val) <= Date.now()) expired = true
      }
      if (expired) cookies.delete(name)
      else cookies.set(name, { value, path })
    }
  }

  function isRedirectTarget(url: URL): boolean {
    const target = new URL(redirect)
    // Loopback redirect URIs may carry any port (RFC 8252 §7.3); compare the rest exactly.
    return (
      url.protocol === target.protocol &&
      url.hostname === target.hostname &&
      url.pathname === target.pathname &&
      (url.port === target.port || isLoopbackHost(target.hostname))
    )
  }

  function fill(form: ParsedForm): URLSearchParams {
    const body = new URLSearchParams(form.hidden)
    switch (form.id) {
      case 'login': {
        const password = options.password ?? findUser(options.user)?.password ?? ''
        body.set('username', options.user)
        body.set('password', password)
        body.set('decision', 'login')
        break
      }
      case 'mfa':
        body.set('code', options.mfaCode ?? DEV_MFA_CODE)
        body.set('decision', 'verify')
        break
      case 'consent':
        body.set('decision', options.consent === false ? 'deny' : 'allow')
        break
      case 'approval':
        body.set('decision', options.approve === false ? 'deny' : 'allow')
        break
    }
    return body
  }

  async function authorize(url: URL): Promise<URL> {
    let current = new URL(url)
    let method: 'GET' | 'POST' = 'GET'
    let body: URLSearchParams | undefined
    let lastForm: string | undefined
    for (let step = 0; step < maxSteps; step++) {
      if (!isLoopbackHost(current.hostname)) {
        throw new DevInteractionError(
          `devInteraction only talks to loopback hosts, not ${current.host}`,
        )
      }
      const headers: Record<string, string> = { accept: 'text/html' }
      const cookie = cookieHeader(current)
      if (cookie) headers['cookie'] = cookie
      if (method === 'POST') {
        headers['content-type'] = 'application/x-www-form-urlencoded'
        headers['origin'] = current.origin
      }
      const response = await fetch(current, {
        method,
        headers,
        redirect: 'manual',
        ...(body ? { body } : {}),
      })
      storeCookies(current, response)
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location')
        await response.body?.cancel()
        if (!location)
          throw new DevInteractionError(`redirect without Location from ${current.href}`)
        const next = new URL(location, current)
        if (isRedirectTarget(next)) return next
        current = next
        method = 'GET'
        body = undefined
        continue
      }
      const text = await response.text()
      const form = parseForm(text)
      if (!form) {
        throw new DevInteractionError(
          `unexpected answer ${response.status} from ${current.origin}${current.pathname}: ${summary(text)}`,
        )
      }
      // The same form again with an error means our input was refused: stop, don't loop.
      if (form.error && lastForm === form.id) {
        throw new DevInteractionError(`${form.id} refused: ${form.error}`)
      }
      lastForm = form.id
      pages.push({ form: form.id, url: current.href, text: visibleText(text) })
      body = fill(form)
      current = new URL(form.action, current)
      method = 'POST'
    }
    throw new DevInteractionError(`no redirect to ${redirect} after ${maxSteps} steps`)
  }

  return {
    pages,
    redirectUri: () => redirect,
    authorize: (url) => authorize(url),
  }
}

interface ParsedForm {
  id: 'login' | 'mfa' | 'consent' | 'approval'
  action: string
  hidden: Array<[string, string]>
  error?: string
}

function decode(value: string): string {
  return value
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag)
  return match?.[1] === undefined ? undefined : decode(match[1])
}

// The pages are this package's own server-rendered HTML, so a small, strict reader is enough:
// one form per page, identified by its id.
function parseForm(page: string): ParsedForm | undefined {
  const formTag = /<form\b[^>]*>/.exec(page)?.[0]
  if (!formTag) return undefined
  const id = attribute(formTag, 'id')
  const action = attribute(formTag, 'action')
  if (!action || (id !== 'login' && id !== 'mfa' && id !== 'consent' && id !== 'approval')) {
    return undefined
  }
  const hidden: Array<[string, string]> = []
  for (const input of page.matchAll(/<input\b[^>]*>/g)) {
    if (attribute(input[0], 'type') !== 'hidden') continue
    const name = attribute(input[0], 'name')
    if (name) hidden.push([name, attribute(input[0], 'value') ?? ''])
  }
  const errorMatch = /<p class="error"[^>]*data-error[^>]*>([\s\S]*?)<\/p>/.exec(page)
  const form: ParsedForm = { id, action, hidden }
  if (errorMatch?.[1] !== undefined) form.error = visibleText(errorMatch[1])
  return form
}

function visibleText(page: string): string {
  return decode(
    page
      .replace(/<style[\s\S]*?<\/style>/g, ' ')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  )
}

function summary(page: string): string {
  const text = visibleText(page)
  return text.length > 300 ? `${text.slice(0, 300)}…` : text
}
