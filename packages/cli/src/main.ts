/**
 * The `callproof` command: dispatches to one module per command and turns errors into one line.
 */
import { CliError, UsageError, style } from './io.js'
import type { Io } from './io.js'
import { safeText } from './terminal.js'

/** The version printed by `callproof --version`. */
export const VERSION = '0.1.0'

const HELP = `callproof — every MCP call proves who is calling; every tool decides per call.

Usage: callproof <command> [options]

Commands:
  demo      play the attack and the defence on loopback, end with a table (--insecure: the baseline)
  dev       run a development authorization server and the drive server until Ctrl-C
            (--resource <uri> --scopes <list>: the authorization server for your own server)
  call      call a tool on an MCP server as a secure client (DPoP, step-up, approvals)
  bridge    let any MCP client (Claude Desktop, Cursor, VS Code, Inspector) use a callproof
            server: a stdio MCP server that signs every message (--listen: loopback HTTP
            behind a per-launch secret)
  scan      measure caller identity confusion in any MCP server, safely (calls no tool
            unless --probe names it)
  inspect   decode a DPoP proof or access token and explain every claim
  audit     pretty-print and filter a JSON-lines audit log

Run \`callproof <command> --help\` for a command's options.

Options:
  -h, --help     show this help
  -v, --version  print the version`

type Command = (argv: string[], io: Io) => Promise<number>

// Loaded on demand: `callproof inspect` should not pay for starting oidc-provider's imports.
const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.js')).demoCommand,
  dev: async () => (await import('./dev.js')).devCommand,
  call: async () => (await import('./call.js')).callCommand,
  bridge: async () => (await import('./bridge/command.js')).bridgeCommand,
  scan: async () => (await import('./scan/command.js')).scanCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. Errors a
 * command throws as {@link CliError} become one line on stderr; anything else is a bug and is
 * printed with its stack.
 */
export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  try {
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      if (name === 'help' && rest[0] !== undefined && rest[0] in commands) {
        return await run(rest[0], ['--help'], io)
      }
      io.out(HELP)
      return name === undefined ? 2 : 0
    }
    if (name === '-v' || name === '--version') {
      io.out(VERSION)
      return 0
    }
    if (!(name in commands)) {
      throw new UsageError(`unknown command "${name}"`)
    }
    return await run(name, rest, io)
  } catch (error) {
    return report(error, io)
  }
}

async function run(name: string, argv: string[], io: Io): Promise<number> {
  const load = commands[name]
  if (load === undefined) throw new UsageError(`unknown command "${name}"`)
  return (await load())(argv, io)
}

/** Prints an error as one clear line (plus what to do) and returns its exit code. */
export function report(error: unknown, io: Io): number {
  // One line: what went wrong, then what to do about it. Messages carry servers' words and
  // values from the command line, so they pass through safeText like every outside value.
  if (error instanceof CliError) {
    const hint =
      error.hint === undefined ? '' : style(io, 'dim', ` — ${safeText(error.hint, { max: 500 })}`)
    io.err(`${style(io, 'red', 'callproof:')} ${safeText(error.message, { max: 1000 })}${hint}`)
    return error.exitCode
  }
  const e = error instanceof Error ? error : new Error(String(error))
  const hint = ' — unexpected: rerun with CALLPROOF_DEBUG=1 for the stack trace, and report it'
  io.err(
    `${style(io, 'red', 'callproof:')} ${safeText(e.message, { max: 1000 })}${style(io, 'dim', hint)}`,
  )
  if (io.env.CALLPROOF_DEBUG !== undefined) io.err(e.stack ?? '')
  return 1
}
