/**
 * How a command signs in: headlessly as a development test user (`--user`), or through the system
 * browser with a loopback redirect, the URL also printed on stderr for machines without one. Every
 * authorization is narrated on stderr as it happens; stdout stays the command's own (for
 * `callproof bridge`, the MCP channel).
 */
import { execFile } from 'node:child_process'
import { systemBrowserInteraction } from '@callproof/client'
import type { Interaction, InteractionContext } from '@callproof/client'
import { style } from './io.js'
import type { Io } from './io.js'
import { loadDevAuthServer } from './stack.js'
import { safeText } from './terminal.js'

/** What a command's command line says about signing in. */
export interface SignInOptions {
  /** A development test user to sign in as headlessly (`--user`). */
  readonly user?: string
  /** With `user`: the password to type (default: the published one). */
  readonly password?: string
  /** With `user`: press Deny on the approval page. */
  readonly deny?: boolean
  /** Whether the server is on loopback (http authorization URLs on loopback may be opened). */
  readonly development: boolean
  /** Opens the authorization URL; default `$BROWSER <url>` if set, else the system browser. */
  readonly openUrl?: (url: string) => Promise<void>
}

/** An interaction and what ends it (the browser interaction's redirect listener). */
export interface SignIn {
  readonly interaction: Interaction
  close(): Promise<void>
}

/** Why the client asks, in a few words for the user. */
export function describeAuthorization(context: InteractionContext): string {
  switch (context.reason) {
    case 'authorize':
      return 'sign-in needed'
    case 'scope':
      return 'more permissions needed (scope step-up)'
    case 'step_up':
      return 'a stronger or fresher sign-in is needed (step-up)'
    case 'approval': {
      const details = (context.authorizationDetails ?? []) as { tool?: unknown; args?: unknown }[]
      const tools = details.map((d) => safeText(d.tool, { max: 80 })).join(', ')
      return `this call needs your approval (${tools || 'one call'})`
    }
  }
}

/** Opens `url` with the program named in `$BROWSER` (a common convention), never through a shell. */
function browserFromEnv(command: string): (url: string) => Promise<void> {
  return (url) =>
    new Promise((resolve, reject) => {
      const child = execFile(command, [url], { shell: false }, (error) => {
        if (error !== null) reject(error)
      })
      // The browser may keep running; it only has to have started.
      child.once('spawn', () => resolve())
    })
}

/** The interaction a command signs in with, narrated on stderr. */
export async function signIn(io: Io, options: SignInOptions): Promise<SignIn> {
  let interaction: Interaction
  let close = async () => {}
  if (options.user !== undefined) {
    const { devInteraction } = await loadDevAuthServer()
    interaction = devInteraction({
      user: options.user,
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.deny === true ? { approve: false } : {}),
    })
  } else {
    const browserCommand = io.env.BROWSER
    const openUrl =
      options.openUrl ??
      (browserCommand === undefined || browserCommand === ''
        ? undefined
        : browserFromEnv(browserCommand))
    const browser = systemBrowserInteraction({
      allowLoopbackHttp: options.development,
      ...(openUrl === undefined ? {} : { open: openUrl }),
      onUrl: (authorizationUrl) =>
        io.err(
          `  open this URL to continue (a browser should open by itself):\n  ${safeText(authorizationUrl.href, { max: 8000 })}`,
        ),
    })
    interaction = browser
    close = () => browser.close()
  }
  const as = options.user === undefined ? '' : ` — signing in as ${safeText(options.user)}`
  const shown: Interaction = {
    redirectUri: () => interaction.redirectUri(),
    authorize: async (authorizationUrl, context) => {
      io.err(`${style(io, 'yellow', '↻')} ${describeAuthorization(context)}${as}`)
      const result = await interaction.authorize(authorizationUrl, context)
      const error = result.searchParams.get('error')
      io.err(
        error === null
          ? `${style(io, 'green', '✓')} authorized`
          : `${style(io, 'red', '✗')} authorization refused: ${safeText(error)}`,
      )
      return result
    },
  }
  return { interaction: shown, close }
}
