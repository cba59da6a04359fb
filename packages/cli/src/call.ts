/**
 * `callproof call <server-url> <tool> [key=value …]`: the secure client in a terminal. Every
 * request carries a fresh DPoP proof bound to the call; sign-in, step-up and per-call approvals
 * happen as the server asks for them, and are shown as they happen.
 */
import { isLoopbackHost } from '@callproof/core'
import { join } from 'node:path'
import {
  CallproofClientError,
  ChallengeError,
  FileKeyStore,
  FileTokenStore,
  connect,
} from '@callproof/client'
import type { ConnectOptions } from '@callproof/client'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { parse, serverUrlArgument } from './args.js'
import { CliError, UsageError, style } from './io.js'
import type { Io } from './io.js'
import { safeJson, safeText } from './terminal.js'
import { signIn } from './sign-in.js'
import {
  AGENT_METADATA,
  describeChallenge,
  recordingFetch,
  retryTracker,
  traceLines,
} from './trace.js'

/**
 * Turns `key=value` (a string) and `key:=json` (any JSON value) pairs into tool arguments, on top
 * of a base object from `--json`.
 *
 * @example
 * ```ts
 * toolArguments(['path=notes/a.txt', 'limit:=10']) // { path: 'notes/a.txt', limit: 10 }
 * ```
 */
export function toolArguments(pairs: readonly string[], json?: string): Record<string, unknown> {
  let args: Record<string, unknown> = {}
  if (json !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch {
      throw new UsageError(`--json is not valid JSON: ${json}`, 'call')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError('--json must be a JSON object of tool arguments', 'call')
    }
    args = { ...(parsed as Record<string, unknown>) }
  }
  for (const pair of pairs) {
    const typed = /^([^=:]+):=(.*)$/s.exec(pair)
    if (typed?.[1] !== undefined) {
      try {
        args[typed[1]] = JSON.parse(typed[2] ?? '')
      } catch {
        throw new UsageError(`${pair}: the value after := must be JSON`, 'call')
      }
      continue
    }
    const plain = /^([^=]+)=(.*)$/s.exec(pair)
    if (plain?.[1] === undefined) {
      throw new UsageError(`"${pair}" is not key=value (or key:=json)`, 'call')
    }
    args[plain[1]] = plain[2] ?? ''
  }
  return args
}

function isLoopbackUrl(url: URL): boolean {
  return isLoopbackHost(url.hostname)
}

const HELP = `Usage: callproof call <server-url> [tool] [key=value | key:=json …] [options]

Calls one tool on an MCP server as a callproof client: a non-extractable key, DPoP-bound
OAuth 2.1, a proof bound to this very call. Sign-in, step-up (scope, MFA) and per-call
approvals happen when the server asks for them, and are shown as they happen.
Without a tool, lists the tools this caller can see.

Arguments:
  key=value        a string argument          e.g. path=notes/todo.txt
  key:=json        a JSON argument            e.g. limit:=10  tags:='["a","b"]'

Options:
  --json <object>   the tool arguments as one JSON object (key=value pairs override it)
  --user <id>       sign in headlessly as a development test user (alice, bob); only
                    against the development authorization server (\`callproof dev\`)
  --password <pw>   with --user: the password to type (default: the published one)
  --deny            with --user: press Deny on the approval page
  --state <dir>     keep the key and tokens in <dir> between calls (files mode 0600);
                    default: a fresh in-memory key per run
  --raw             print the whole tool result as JSON
  --trace           show every request to the server on stderr: its access token's and its
                    DPoP proof's decoded header and claims (signatures elided), the answer
                    with its WWW-Authenticate challenge and reason, and which request is
                    the retry after a challenge
  -h, --help        show this help

Servers on loopback (http://127.0.0.1:…) are called in development mode (http allowed).
Without --user, sign-in opens the system browser (or $BROWSER) with a loopback redirect.

Exit code: 0 on a tool result, 1 when the call was refused or the tool failed.`

/** What `callCommand` can be given instead of the real world (tests, embedding programs). */
export interface CallDependencies {
  /** Opens the authorization URL in a browser. Default: `$BROWSER <url>` if set, else the system browser. */
  readonly openUrl?: (url: string) => Promise<void>
}

/** Runs `callproof call`. */
export async function callCommand(
  argv: string[],
  io: Io,
  dependencies: CallDependencies = {},
): Promise<number> {
  const { values, positionals } = parse('call', argv, {
    json: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    deny: { type: 'boolean' },
    state: { type: 'string' },
    raw: { type: 'boolean' },
    trace: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  const [server, tool, ...pairs] = positionals
  if (server === undefined) throw new UsageError('give the MCP server URL', 'call')
  const url = serverUrlArgument('call', server)
  if (tool === undefined && (pairs.length > 0 || values.json !== undefined)) {
    throw new UsageError('arguments given without a tool name', 'call')
  }
  const args = tool === undefined ? {} : toolArguments(pairs, values.json)
  const development = isLoopbackUrl(url)
  const note = (text: string) => io.err(style(io, 'dim', text))

  const { interaction, close: closeInteraction } = await signIn(io, {
    development,
    ...(values.user === undefined ? {} : { user: values.user }),
    ...(values.password === undefined ? {} : { password: values.password }),
    ...(values.deny === true ? { deny: true } : {}),
    ...(dependencies.openUrl === undefined ? {} : { openUrl: dependencies.openUrl }),
  })

  const trace = values.trace === true
  const isRetry = retryTracker()
  const { fetch: traced } = recordingFetch(
    url.origin,
    (exchange) => {
      const retry = isRetry(exchange)
      if (trace) {
        for (const line of traceLines(exchange, { retry })) note(line)
      } else if (exchange.status === 401 || exchange.status === 403) {
        note(`← ${safeText(describeChallenge(exchange), { max: 300 })}`)
      }
    },
    // Refusals' reasons, for the trace (read before the caller sees the answer).
    { answers: trace },
  )
  const options: ConnectOptions = {
    interaction,
    fetch: traced,
    development,
    clientInfo: { name: 'callproof-cli', version: '0.1.0' },
    registration: { clientMetadata: AGENT_METADATA('callproof CLI') },
  }
  if (values.state !== undefined) {
    options.keyStore = new FileKeyStore(join(values.state, 'key.json'))
    options.tokenStore = await FileTokenStore.open(join(values.state, 'tokens.json'))
  }
  if (development) note(`development mode: ${url.origin} is on loopback, http allowed`)

  let client: Client | undefined
  try {
    client = await connect(url, options).catch((error: unknown) => {
      throw explain(error, url)
    })
    if (tool === undefined) {
      const { tools } = await client.listTools()
      for (const t of tools) {
        io.out(
          `${style(io, 'cyan', safeText(t.name, { max: 100 }))}${t.description === undefined ? '' : `  ${safeText(t.description, { max: 300 })}`}`,
        )
      }
      return 0
    }
    note(`→ tools/call ${safeText(tool, { max: 100 })} ${safeText(args, { max: 300 })}`)
    const result = await client
      .callTool({ name: tool, arguments: args })
      .catch((error: unknown) => {
        throw explain(error, url)
      })
    if (values.raw === true) {
      io.out(safeJson(result, 2))
    } else {
      const content = (result.content ?? []) as { type: string; text?: string }[]
      for (const c of content) io.out(c.type === 'text' ? toolLines(c.text) : safeText(c))
    }
    if (result.isError === true) {
      io.err(`${style(io, 'red', 'callproof:')} the tool reported an error`)
      return 1
    }
    return 0
  } finally {
    await client?.close().catch(() => undefined)
    await closeInteraction()
  }
}

/** The most lines of one text result shown, and the most characters of each. */
const RESULT_LINES = 1000
const RESULT_LINE_MAX = 2000

/**
 * A tool's text result as the lines it holds, each escaped and bounded: the newlines a tool
 * meant are kept, while nothing in a line can move the cursor, reorder or hide text.
 */
function toolLines(text: unknown): string {
  const lines = (typeof text === 'string' ? text : '').split(/\r?\n/)
  const shown = lines.slice(0, RESULT_LINES).map((line) => safeText(line, { max: RESULT_LINE_MAX }))
  if (lines.length > RESULT_LINES) shown.push(`…(+${lines.length - RESULT_LINES} lines)`)
  return shown.join('\n')
}

/** One line for what went wrong, and what to do about it. */
export function explain(error: unknown, url: URL): unknown {
  if (error instanceof CliError) return error
  const devError = causes(error).find((e) => e.name === 'DevInteractionError')
  if (devError !== undefined) {
    return new CliError(devError.message.replace(/\.$/, ''), {
      hint: '--user works with the development server’s test users, alice and bob',
      cause: error,
    })
  }
  if (error instanceof ChallengeError) {
    return new CliError(error.message, {
      hint:
        error.code === 'ERR_ACCESS_DENIED'
          ? 'no sign-in or approval can change that for this caller'
          : 'the client gave up after its retries; run again, or read the server’s audit log',
      cause: error,
    })
  }
  if (error instanceof CallproofClientError) {
    const hints: Partial<Record<CallproofClientError['code'], string>> = {
      ERR_UNSAFE_URL: 'only https servers (or http on loopback) are contacted',
      ERR_AUTHORIZATION_FAILED: 'the authorization server or the user said no',
      ERR_RESOURCE_MISMATCH: 'the server’s metadata names another resource: check the URL',
      ERR_DPOP_NOT_OFFERED:
        'callproof call uses DPoP-bound tokens only; @callproof/client opts in to unbound ones per server with requireBoundTokens: false',
    }
    const hint = hints[error.code]
    return new CliError(error.message, { ...(hint === undefined ? {} : { hint }), cause: error })
  }
  const message = error instanceof Error ? error.message : String(error)
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause
  if (cause?.code === 'ECONNREFUSED' || /fetch failed|ECONNREFUSED/.test(message)) {
    return new CliError(`cannot reach ${url.href}`, {
      hint: 'is the server running? `callproof dev` starts a development stack',
      cause: error,
    })
  }
  return error
}

/** `error` and its chain of causes. */
function causes(error: unknown): Error[] {
  const chain: Error[] = []
  for (let e = error; e instanceof Error && chain.length < 10; e = e.cause) chain.push(e)
  return chain
}
