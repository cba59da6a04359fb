/**
 * `callproof bridge <server-url>`: lets any MCP client use a callproof server. The client
 * launches the bridge as a stdio MCP server (or talks to it over loopback HTTP with `--listen`);
 * the bridge holds the proof key, signs in, sends every message on with a fresh proof bound to
 * it, answers every challenge (nonce, scope, step-up, per-call approval) and relays what the
 * server sends back, its own requests included.
 *
 * stdout is the MCP channel: everything a human reads goes to stderr.
 */
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import {
  FileKeyStore,
  FileTokenStore,
  MemoryTokenStore,
  createCallproofFetch,
} from '@callproof/client'
import type { CallproofSession, TokenStore } from '@callproof/client'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { isLoopbackHost } from '@callproof/core'
import { parse, portOption, serverUrlArgument } from '../args.js'
import { explain } from '../call.js'
import { UsageError, interrupted, style } from '../io.js'
import type { Io } from '../io.js'
import { signIn } from '../sign-in.js'
import { safeText } from '../terminal.js'
import { AGENT_METADATA, describeChallenge, recordingFetch } from '../trace.js'
import { listen } from './listen.js'
import { pump } from './pump.js'
import type { PumpEvents } from './pump.js'
import { configDir, serverStateDir } from './state.js'

const HELP = `Usage: callproof bridge <server-url> [options]

Lets any MCP client (Claude Desktop, Cursor, VS Code, MCP Inspector, the SDKs) use a
callproof server. The client launches the bridge as a stdio MCP server; the bridge sends
every message on with a fresh DPoP proof bound to it, signs in, answers every challenge
(nonce, scope, MFA step-up, per-call approval) and relays the server's own requests
(elicitation, sampling, …) and notifications back.

Options:
  --user <id>       sign in headlessly as a development test user (alice, bob); only
                    against the development authorization server (\`callproof dev\`)
  --password <pw>   with --user: the password to type (default: the published one)
  --deny            with --user: press Deny on every approval page
  --state <dir>     keep the key and tokens in <dir> (files mode 0600); default: one
                    directory per server under $XDG_CONFIG_HOME/callproof/bridge
                    (~/.config/callproof/bridge). With --user tokens stay in memory.
  --listen <port>   serve Streamable HTTP on 127.0.0.1:<port> instead of stdio (0: a
                    free port), for clients that speak only HTTP. See below.
  -h, --help        show this help

--listen and its secret: a port on 127.0.0.1 can be called by every process on this
machine, and by web pages through DNS rebinding. A bridge that answered them all would
be a standing authorization any local program can use. So each launch makes a new
random secret (256 bits) and prints the endpoint once on stderr, as
http://127.0.0.1:<port>/<secret>/mcp. Give that URL to your MCP client; any other path
gets 404, and a Host or Origin that is not loopback gets 403, with no details. The
secret dies with the process: restart the bridge and update the URL.

stdout carries only MCP messages; sign-in URLs, challenges and errors go to stderr.
Without --user, sign-in opens the system browser (or $BROWSER), or prints the URL
on stderr when there is none. Servers on loopback are called in development mode
(http allowed).`

/** What `bridgeCommand` can be given instead of the process's own (tests, embedding programs). */
export interface BridgeDependencies {
  /** The MCP channel: default `process.stdin` / `process.stdout`. */
  readonly stdin?: Readable
  readonly stdout?: Writable
  /** Opens the authorization URL in a browser (see `callproof call`). */
  readonly openUrl?: (url: string) => Promise<void>
  /** Stops the bridge when it settles (default: Ctrl-C or SIGTERM; for stdio also the end of stdin). */
  readonly until?: Promise<unknown>
}

/** Runs `callproof bridge` until the MCP client goes away (stdio) or Ctrl-C (`--listen`). */
export async function bridgeCommand(
  argv: string[],
  io: Io,
  dependencies: BridgeDependencies = {},
): Promise<number> {
  const { values, positionals } = parse('bridge', argv, {
    user: { type: 'string' },
    password: { type: 'string' },
    deny: { type: 'boolean' },
    state: { type: 'string' },
    listen: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  const [server, ...extra] = positionals
  if (server === undefined) throw new UsageError('give the callproof server URL', 'bridge')
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, 'bridge')
  const url = serverUrlArgument('bridge', server)
  const port = portOption('bridge', values.listen, '--listen')
  if (values.user === undefined && (values.password !== undefined || values.deny === true)) {
    throw new UsageError('--password and --deny need --user', 'bridge')
  }
  const development = isLoopbackHost(url.hostname)
  const note = (line: string) => io.err(style(io, 'dim', line))
  const shownUrl = safeText(url.href, { max: 300 })

  const { interaction, close: closeInteraction } = await signIn(io, {
    development,
    ...(values.user === undefined ? {} : { user: values.user }),
    ...(values.password === undefined ? {} : { password: values.password }),
    ...(values.deny === true ? { deny: true } : {}),
    ...(dependencies.openUrl === undefined ? {} : { openUrl: dependencies.openUrl }),
  })
  const stateDir = values.state ?? serverStateDir(configDir(io.env), url)
  // A test user's tokens are not kept: the next launch may sign in as someone else.
  const tokenStore: TokenStore =
    values.user === undefined
      ? await FileTokenStore.open(join(stateDir, 'tokens.json')).catch((error: unknown) => {
          throw explain(error, url)
        })
      : new MemoryTokenStore()
  const { fetch: traced } = recordingFetch(url.origin, (exchange) => {
    if (exchange.status === 401 || exchange.status === 403) {
      note(`← ${safeText(describeChallenge(exchange), { max: 300 })}`)
    }
  })
  let session: CallproofSession | undefined
  try {
    const signed = await createCallproofFetch(url, {
      interaction,
      fetch: traced,
      development,
      keyStore: new FileKeyStore(join(stateDir, 'key.json')),
      tokenStore,
      registration: { clientMetadata: AGENT_METADATA('callproof bridge') },
    }).catch((error: unknown) => {
      throw explain(error, url)
    })
    session = signed.session
    const remote = () => new StreamableHTTPClientTransport(url, { fetch: signed.fetch })
    const events: PumpEvents = {
      // The pump's lines are escaped and bounded already (PumpEvents).
      note: (line) => io.err(`${style(io, 'red', '✗')} ${line}`),
      initialized: (version) => note(`connected to ${shownUrl} (MCP ${safeText(version)})`),
    }
    if (development) note(`development mode: ${url.origin} is on loopback, http allowed`)
    note(`key and tokens: ${safeText(stateDir, { max: 300 })}`)

    if (port !== undefined) {
      const endpoint = await listen({ port, remote, events })
      try {
        // Printed once, here; the secret exists nowhere else but in this process.
        io.err(`callproof bridge: MCP endpoint for ${shownUrl} (keep it secret):`)
        io.err(`  ${endpoint.url}`)
        await (dependencies.until ?? interrupted())
      } finally {
        await endpoint.close()
      }
      return 0
    }

    const stdin = dependencies.stdin ?? process.stdin
    const running = await pump(
      new StdioServerTransport(stdin, dependencies.stdout ?? process.stdout),
      remote(),
      events,
    )
    note(`callproof bridge: stdio ⇄ ${shownUrl}`)
    const ended = new Promise<void>((resolve) => {
      stdin.once('end', resolve)
      stdin.once('close', resolve)
    })
    await Promise.race([running.closed, ended, dependencies.until ?? interrupted()])
    await running.close()
    return 0
  } finally {
    await session?.close()
    await closeInteraction()
  }
}
