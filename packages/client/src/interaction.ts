/**
 * Interaction: how an authorization URL reaches a user (or a test) and how the redirect comes
 * back. The client never decides this itself; it calls an {@link Interaction}.
 *
 * @module
 */

import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CallproofClientError } from './errors.js'
import { isLoopbackHost } from './guards.js'

/**
 * Why the client asks for an authorization, so an interaction can tell the user.
 *
 * @example
 * ```ts
 * const context: InteractionContext = { reason: 'approval', authorizationDetails: [detail] }
 * ```
 */
export interface InteractionContext {
  /** `authorize`: first login; `scope`: more scopes; `step_up`: stronger or fresher login; `approval`: one call. */
  reason: 'authorize' | 'scope' | 'step_up' | 'approval'
  /** For `approval`: the RFC 9396 authorization details requested (the tool, its arguments). */
  authorizationDetails?: unknown[]
}

/**
 * The hook between the client and whoever approves: a system browser, a headless test driver, or
 * the application's own UI.
 *
 * @example
 * ```ts
 * const interaction: Interaction = {
 *   redirectUri: () => 'http://127.0.0.1:8765/callback',
 *   authorize: async (url) => new URL(await myUi.openAndWaitForRedirect(url)),
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export interface Interaction {
  /** The redirect URI to register and send; must not change during one authorization. */
  redirectUri(): string | Promise<string>
  /** Shows `url` to the user and resolves with the full redirect URL (with `code`, `state`, `iss`). */
  authorize(url: URL, context: InteractionContext): Promise<URL>
}

/**
 * Refuses an authorization URL the client must not open: anything but https, or http on a
 * loopback host when `allowLoopbackHttp`. A hostile server could otherwise make the client open a
 * `file:` URL or a local application's custom scheme.
 *
 * @throws {@link CallproofClientError} `ERR_UNSAFE_URL`
 * @example
 * ```ts
 * assertOpenableUrl(new URL('https://auth.example.com/authorize?…'), false)
 * ```
 */
export function assertOpenableUrl(url: URL, allowLoopbackHttp: boolean): void {
  if (url.protocol === 'https:') return
  if (url.protocol === 'http:' && allowLoopbackHttp && isLoopbackHost(url.hostname)) return
  throw new CallproofClientError(
    'ERR_UNSAFE_URL',
    `refusing to open ${url.protocol}//${url.host}: only https (or http on loopback in development) is opened`,
  )
}

/** Options of {@link systemBrowserInteraction}. */
export interface SystemBrowserOptions {
  /** Loopback port for the redirect listener; 0 (default) picks a free one. */
  port?: number
  /** Path of the redirect; default `/callback`. */
  path?: string
  /** Allows http authorization URLs on loopback (a development authorization server). */
  allowLoopbackHttp?: boolean
  /** How long to wait for the redirect, in ms; default 5 minutes. */
  timeoutMs?: number
  /** Opens a URL; default: `xdg-open` / `open` / `rundll32` through execFile, never a shell. */
  open?: (url: string) => Promise<void>
  /** Called with the URL before opening it (print it for users without a browser). */
  onUrl?: (url: URL) => void
}

function defaultOpen(url: string): Promise<void> {
  // execFile with the URL as one argument: no shell ever parses the URL, so characters such as
  // `&`, `;` or `$(…)` a server put in it stay data.
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]]
  return new Promise((resolve, reject) => {
    execFile(cmd, args as string[], { shell: false }, (err) => (err ? reject(err) : resolve()))
  })
}

/**
 * The command-line interaction: a redirect listener on 127.0.0.1 (RFC 8252 §7.3) and the system
 * browser. The listener starts on the first `redirectUri()` call and serves one redirect per
 * `authorize()`.
 *
 * @example
 * ```ts
 * const client = await connect(url, { interaction: systemBrowserInteraction() })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export function systemBrowserInteraction(
  options: SystemBrowserOptions = {},
): Interaction & { close(): Promise<void> } {
  const path = options.path ?? '/callback'
  const open = options.open ?? defaultOpen
  let server: Server | undefined
  let uri: Promise<string> | undefined
  let pending: ((url: URL) => void) | undefined

  function listen(): Promise<string> {
    uri ??= new Promise((resolve, reject) => {
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1')
        if (url.pathname !== path || pending === undefined) {
          res.writeHead(404).end()
          return
        }
        const address = server?.address() as AddressInfo
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('You can close this window and return to the application.')
        const done = pending
        pending = undefined
        done(new URL(`${url.pathname}${url.search}`, `http://127.0.0.1:${address.port}`))
      })
      server.once('error', reject)
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        const address = server?.address() as AddressInfo
        resolve(`http://127.0.0.1:${address.port}${path}`)
      })
    })
    return uri
  }

  return {
    redirectUri: listen,
    async authorize(url) {
      assertOpenableUrl(url, options.allowLoopbackHttp === true)
      await listen()
      const result = new Promise<URL>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending = undefined
          reject(new CallproofClientError('ERR_INTERACTION_FAILED', 'no redirect received in time'))
        }, options.timeoutMs ?? 300_000)
        pending = (callback) => {
          clearTimeout(timer)
          resolve(callback)
        }
      })
      options.onUrl?.(url)
      try {
        await open(url.href)
      } catch (err) {
        // The URL was handed to onUrl; the user can still open it by hand.
        if (!options.onUrl) {
          throw new CallproofClientError('ERR_INTERACTION_FAILED', 'cannot open a browser', {
            cause: err,
          })
        }
      }
      return result
    },
    close() {
      return new Promise((resolve) => {
        if (!server) return resolve()
        server.close(() => resolve())
      })
    },
  }
}
