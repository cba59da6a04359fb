/**
 * Interaction: how an authorization URL reaches a user (or a test) and how the redirect comes
 * back. The client never decides this itself; it calls an {@link Interaction}.
 *
 * @module
 */

import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { CallproofClientError } from './errors.js'
import { isLoopbackHost } from '@callproof/core'

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
  /**
   * Whether the session asking is in development mode (`development: true`), where http on
   * loopback is allowed for the MCP server and the authorization server, so an interaction may
   * open an http authorization URL on a loopback host too. Set by the client from its own
   * options, never from anything a server sent; absent means no.
   */
  development?: boolean
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
  /**
   * The redirect URI to register and send. A session asks once, before it registers, and sends
   * the same URI with every authorization request, so it must keep working for the life of the
   * interaction (nothing needs to listen on it between authorizations).
   */
  redirectUri(): string | Promise<string>
  /**
   * Shows `url` to the user and resolves with the full redirect URL (with `code`, `state`, `iss`).
   * `context.development` says whether the session may use http on loopback.
   */
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
  /**
   * Loopback port of the redirect URI; 0 (default) takes a free port from the system once and keeps
   * it for every authorization of this interaction, so the registered and the requested redirect
   * URI are the same string (for authorization servers that compare them exactly).
   */
  port?: number
  /** Path of the redirect; default `/callback`. */
  path?: string
  /**
   * Whether http authorization URLs on a loopback host (a development authorization server) are
   * opened. Default: when the session asking is in development mode (`development: true`, passed
   * as {@link InteractionContext.development}). `false` refuses them even then; `true` opens them
   * whatever the context says (outside development the session refuses an http authorization
   * server before it gets here). http on any other host is never opened.
   */
  allowLoopbackHttp?: boolean
  /** How long to wait for the redirect, in ms; default 5 minutes. */
  timeoutMs?: number
  /**
   * Opens a URL; a rejection fails the authorization unless `onUrl` is given. Default: `open`
   * (macOS), `rundll32` (Windows) or `xdg-open`, never through a shell; when it finds no browser
   * (no display, no opener, the opener fails) the URL is printed on stderr and the interaction
   * waits for the redirect all the same, unless `onUrl` is given (which has shown it already).
   */
  open?: (url: string) => Promise<void>
  /** Called with the URL before opening it (print it for users without a browser). */
  onUrl?: (url: URL) => void
}

/**
 * Opens `url` in the system browser: `open` (macOS), `rundll32` (Windows), else `xdg-open`.
 * Resolves once the opener exits successfully; rejects with a one-line reason when there is no
 * browser to open: no display (Linux and other Unix outside WSL, neither `DISPLAY` nor
 * `WAYLAND_DISPLAY` set: SSH sessions, containers, CI), no opener program, or an opener that
 * fails. The opener's own output is discarded: xdg-open without a browser prints a line for each
 * program it tried, which is noise next to the URL printed instead.
 */
function defaultOpen(url: string): Promise<void> {
  const env = process.env
  if (
    process.platform !== 'darwin' &&
    process.platform !== 'win32' &&
    !env.DISPLAY &&
    !env.WAYLAND_DISPLAY &&
    !env.WSL_DISTRO_NAME
  ) {
    // xdg-open would try text-mode browsers here, which cannot run without the terminal.
    return Promise.reject(new Error('no display: DISPLAY and WAYLAND_DISPLAY are not set'))
  }
  // The URL as one argument, never through a shell: characters such as `&`, `;` or `$(…)` a
  // server put in it stay data.
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args as string[], { shell: false, stdio: 'ignore' })
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'ENOENT' ? `${cmd} not found` : `${cmd}: ${err.code ?? err.message}`,
        ),
      ),
    )
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `${cmd} ${signal === null ? `exited with code ${code}` : `was stopped by ${signal}`}`,
            ),
          ),
    )
  })
}

/**
 * Tells the user on stderr to open `url` themselves: the default opener found no browser. The URL
 * is the parsed `URL`'s serialization, in which control characters are percent-encoded, so a
 * server's text cannot reach the terminal as escape sequences.
 */
function printUrlInstead(url: URL, reason: string, redirectPort: number): void {
  process.stderr.write(
    `No browser could be opened (${reason}). To sign in, open this URL in a browser:\n\n  ${url.href}\n\n` +
      `Waiting for the redirect to 127.0.0.1:${redirectPort}; a browser on another machine reaches it through ssh -L ${redirectPort}:127.0.0.1:${redirectPort}.\n`,
  )
}

/** The first line of an opener's message, bounded: an error stays one line. */
function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? ''
  return line.length > 200 ? `${line.slice(0, 200)}…` : line
}

/** Asks the system for a free port on 127.0.0.1 and gives it back. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

interface Waiting {
  resolve(callback: URL): void
  reject(err: Error): void
}

/**
 * The command-line interaction: the system browser and a redirect listener on 127.0.0.1
 * (RFC 8252 §7.3). The listener is open only while an authorization is in flight: it starts when
 * `authorize()` is called and closes when the redirect arrives, when opening the browser fails or
 * when `timeoutMs` passes, so nothing keeps the process alive afterwards (RFC 8252 §8.3: open the
 * port when the request starts, close it once the response is returned). `close()` is kept for
 * compatibility: it stops authorizations still waiting and is otherwise a no-op.
 *
 * http authorization URLs on a loopback host are opened when the session is in development mode
 * (`connect(url, { development: true, … })`) unless `allowLoopbackHttp: false`; http on any other
 * host never is.
 *
 * The port is chosen once (or given as `port`) and is free only while nothing else takes it: when
 * another process listens on it, or an outgoing connection happens to use it, between two
 * authorizations, the next one fails with `ERR_INTERACTION_FAILED` naming the port, before the
 * browser opens. Create a new interaction and session then, or give a fixed `port` reserved for
 * this application.
 *
 * @throws {@link CallproofClientError} `ERR_INVALID_OPTIONS` on a bad `port`, `path` or `timeoutMs`
 * @example
 * ```ts
 * const client = await connect('http://127.0.0.1:3000/mcp', {
 *   interaction: systemBrowserInteraction(),
 *   development: true,
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.3
 */
export function systemBrowserInteraction(
  options: SystemBrowserOptions = {},
): Interaction & { close(): Promise<void> } {
  const path = options.path ?? '/callback'
  const open = options.open
  const timeoutMs = options.timeoutMs ?? 300_000
  if (
    options.port !== undefined &&
    (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535)
  ) {
    throw new CallproofClientError(
      'ERR_INVALID_OPTIONS',
      `port ${String(options.port)} is not a TCP port`,
    )
  }
  if (!path.startsWith('/') || /[?#\s]/.test(path)) {
    throw new CallproofClientError(
      'ERR_INVALID_OPTIONS',
      `path ${JSON.stringify(path)} must start with / and have no query, fragment or spaces`,
    )
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new CallproofClientError('ERR_INVALID_OPTIONS', `timeoutMs ${timeoutMs} must be positive`)
  }

  // One port for the life of the interaction: the URI registered (dynamic registration happens
  // once) and the URI of every request are then the same string, which authorization servers
  // that compare redirect URIs exactly (RFC 6749 §3.1.2.3, OpenID Connect Core) require. Between
  // authorizations nothing listens on it; a process that takes the port meanwhile makes the next
  // authorization fail before the browser opens, so it never receives a code (which would be
  // useless anyway without the PKCE verifier and the DPoP key). Moving to a fresh port then is no
  // way out, even for servers that accept any loopback port (RFC 8252 §7.3): the session asks for
  // the redirect URI once, registers it, remembers the registration by it, and sends it again in
  // the token request, which must repeat the authorization request's URI (RFC 6749 §4.1.3).
  let port: Promise<number> | undefined
  function redirectPort(): Promise<number> {
    port ??= options.port ? Promise.resolve(options.port) : freePort()
    port.catch(() => (port = undefined))
    return port
  }

  // Authorizations in flight, by `state`: one listener serves them all and closes with the last.
  const waiting = new Map<string, Waiting>()
  let listener: Promise<Server> | undefined
  let closed: Promise<void> = Promise.resolve()

  function listen(at: number): Promise<Server> {
    return closed.then(
      () =>
        new Promise((resolve, reject) => {
          const server = createServer((req, res) => {
            const url = new URL(req.url ?? '/', 'http://127.0.0.1')
            // Only the redirect of an authorization we are waiting for is taken: a stray request
            // (another local process, a browser prefetch) neither ends nor forges one.
            const target =
              url.pathname === path ? waiting.get(url.searchParams.get('state') ?? '') : undefined
            if (target === undefined) {
              res.writeHead(404, { connection: 'close' }).end()
              return
            }
            res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
            // Resolved once the page is written: the listener may close at once afterwards.
            res.end('You can close this window and return to the application.', () =>
              target.resolve(new URL(`${url.pathname}${url.search}`, `http://127.0.0.1:${at}`)),
            )
          })
          server.once('error', (err: NodeJS.ErrnoException) =>
            reject(
              new CallproofClientError(
                'ERR_INTERACTION_FAILED',
                err.code === 'EADDRINUSE'
                  ? `cannot receive the redirect: 127.0.0.1:${at}, the port of this interaction's redirect URI, is now used by another process, so the browser was not opened; the registered redirect URI names this port, so create a new interaction (and a new session or client), or pass systemBrowserInteraction({ port }) a fixed port nothing else uses`
                  : `cannot listen on 127.0.0.1:${at} for the redirect: ${err.message}`,
                { cause: err },
              ),
            ),
          )
          server.listen(at, '127.0.0.1', () => resolve(server))
        }),
    )
  }

  function stopListening(): Promise<void> {
    const current = listener
    listener = undefined
    if (current !== undefined) {
      closed = current.then(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve())
            // A browser's spare connections would otherwise keep the process alive.
            server.closeAllConnections()
          }),
        () => undefined,
      )
    }
    return closed
  }

  return {
    async redirectUri() {
      return `http://127.0.0.1:${await redirectPort()}${path}`
    },
    async authorize(url, context) {
      assertOpenableUrl(url, options.allowLoopbackHttp ?? context.development === true)
      const at = await redirectPort()
      const state = url.searchParams.get('state') ?? ''
      if (waiting.has(state)) {
        throw new CallproofClientError(
          'ERR_INTERACTION_FAILED',
          'an authorization with the same state is already waiting for its redirect',
        )
      }
      let timer: ReturnType<typeof setTimeout> | undefined
      const result = new Promise<URL>((resolve, reject) => {
        waiting.set(state, { resolve, reject })
        timer = setTimeout(
          () =>
            reject(
              new CallproofClientError(
                'ERR_INTERACTION_FAILED',
                `no redirect received within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        )
      })
      // Settled before it is awaited when the browser fails to open or the time runs out first.
      result.catch(() => undefined)
      try {
        listener ??= listen(at)
        await listener
        options.onUrl?.(url)
        if (open === undefined) {
          // Not awaited: an opener may stay until the browser exits, and the redirect can come
          // first. Without a browser (SSH, containers, CI, WSL) the user opens the URL by hand.
          defaultOpen(url.href).catch((err: Error) => {
            if (!options.onUrl && waiting.has(state)) printUrlInstead(url, err.message, at)
          })
        } else {
          try {
            await open(url.href)
          } catch (err) {
            // The URL was handed to onUrl; the user can still open it by hand.
            if (!options.onUrl) {
              throw new CallproofClientError(
                'ERR_INTERACTION_FAILED',
                `cannot open a browser: ${firstLine(err instanceof Error ? err.message : String(err))}`,
                { cause: err },
              )
            }
          }
        }
        return await result
      } finally {
        clearTimeout(timer)
        waiting.delete(state)
        // Settles only when the listener is gone: nothing outlives the authorization.
        if (waiting.size === 0) await stopListening()
      }
    },
    async close() {
      for (const target of waiting.values()) {
        target.reject(new CallproofClientError('ERR_INTERACTION_FAILED', 'interaction closed'))
      }
      await stopListening()
    },
  }
}
