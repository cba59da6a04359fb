/**
 * Command-line parsing on `node:util`'s `parseArgs`, turning its errors into one-line usage errors.
 */
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { UsageError } from './io.js'

/** An option table, as `parseArgs` takes it. */
export type OptionTable = NonNullable<ParseArgsConfig['options']>

/** What {@link parse} returns for an option table. */
export type ParsedArgs<O extends OptionTable> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>

/**
 * Parses `argv` for `command`. Unknown options and missing values become a {@link UsageError}
 * that names the command, so the user is pointed at the right `--help`.
 */
export function parse<const O extends OptionTable>(
  command: string,
  argv: string[],
  options: O,
): ParsedArgs<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    // parseArgs' messages are long and end with advice for programmers; keep the first sentence.
    throw new UsageError(message.split('. ')[0]?.replace(/\.$/, '') ?? message, command)
  }
}

/** `--port 0`…`65535` (or the option `name`, e.g. `--auth-port`), or undefined when absent. */
export function portOption(
  command: string,
  value: string | undefined,
  name = '--port',
): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (value.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${name} must be a number from 0 to 65535, got "${value}"`, command)
  }
  return port
}

/** An MCP server URL from the command line: http(s) only, or a one-line usage error. */
export function serverUrlArgument(command: string, value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`"${value}" is not a URL (e.g. http://127.0.0.1:3000/mcp)`, command)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(
      `the server URL must be http(s), not ${url.protocol.slice(0, -1)} (e.g. http://127.0.0.1:3000/mcp)`,
      command,
    )
  }
  return url
}
