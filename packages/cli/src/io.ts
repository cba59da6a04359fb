/**
 * Terminal plumbing shared by every command: where output goes, whether it may be coloured, a
 * progress line for long steps, and the one error type a command throws to end with a clear line.
 */

/** Where a command writes, and what the terminal it writes to can do. */
export interface Io {
  /** Results: the table, the JSON, the decoded claims. */
  out(text: string): void
  /** Narration, progress and errors, so that `--json` on stdout stays machine-readable. */
  err(text: string): void
  /** Colour only on a terminal and when `NO_COLOR` is unset (https://no-color.org). */
  readonly color: boolean
  /** A terminal on stderr: progress may redraw its line. */
  readonly interactive: boolean
  readonly env: Readonly<Record<string, string | undefined>>
}

/** The process's own terminal: stdout for results, stderr for everything a human reads along. */
export function processIo(): Io {
  const env = process.env
  const tty = Boolean(process.stdout.isTTY)
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== ''
  return {
    out: (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    color: tty && !noColor && env.TERM !== 'dumb',
    interactive: Boolean(process.stderr.isTTY),
    env,
  }
}

/** An Io that keeps everything in memory (tests, and the demo run inside another program). */
export function memoryIo(
  options: { color?: boolean; env?: Record<string, string | undefined> } = {},
): Io & {
  readonly stdout: string[]
  readonly stderr: string[]
} {
  const stdout: string[] = []
  const stderr: string[] = []
  return {
    stdout,
    stderr,
    out: (text) => void stdout.push(text),
    err: (text) => void stderr.push(text),
    color: options.color ?? false,
    interactive: false,
    env: options.env ?? {},
  }
}

/** Exit codes: 0 done, 1 the thing asked for failed or was refused, 2 the command line was wrong. */
export type ExitCode = 0 | 1 | 2 | 130

/**
 * An error a command ends with: one line saying what went wrong and what to do about it.
 * `bin.ts` prints `callproof: <message>` and exits with `exitCode`, without a stack trace.
 */
export class CliError extends Error {
  readonly exitCode: ExitCode
  readonly hint: string | undefined
  constructor(
    message: string,
    options: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = this.constructor.name
    this.exitCode = options.exitCode ?? 1
    this.hint = options.hint
  }
}

/** A wrong command line: exit code 2 and a pointer at `--help`. */
export class UsageError extends CliError {
  constructor(message: string, command?: string) {
    super(message, {
      exitCode: 2,
      hint: `run \`callproof ${command === undefined ? '' : `${command} `}--help\``,
    })
  }
}

const codes = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
} as const

/** Style names usable with {@link style}. */
export type StyleName = keyof typeof codes

/** Wraps `text` in ANSI codes when the Io allows colour; returns it unchanged otherwise. */
export function style(io: Pick<Io, 'color'>, name: StyleName, text: string): string {
  if (!io.color) return text
  const [open, close] = codes[name]
  return `\u001b[${open}m${text}\u001b[${close}m`
}

/** Removes ANSI colour codes (to measure the printed width of a cell). */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '')
}

/**
 * Runs a long step with a progress line on stderr: a spinner on a terminal, one line before and one
 * after otherwise (CI logs stay readable). The step's error is passed on unchanged.
 */
export async function progress<T>(io: Io, label: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now()
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`
  if (!io.interactive) {
    io.err(`… ${label}`)
    try {
      const value = await step()
      io.err(`✓ ${label} (${elapsed()})`)
      return value
    } catch (error) {
      io.err(`✗ ${label} (${elapsed()})`)
      throw error
    }
  }
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  let frame = 0
  const draw = (mark: string) => process.stderr.write(`\r\u001b[2K${mark} ${label}`)
  draw(style(io, 'cyan', frames[0] ?? '…'))
  const timer = setInterval(
    () => draw(style(io, 'cyan', frames[++frame % frames.length] ?? '…')),
    80,
  )
  timer.unref()
  try {
    const value = await step()
    clearInterval(timer)
    draw(`${style(io, 'green', '✓')} ${label} ${style(io, 'dim', `(${elapsed()})`)}\n`)
    return value
  } catch (error) {
    clearInterval(timer)
    draw(`${style(io, 'red', '✗')} ${label} ${style(io, 'dim', `(${elapsed()})`)}\n`)
    throw error
  }
}

/** Splits `text` into lines of at most `width` visible characters, at spaces where it can. */
export function wrap(text: string, width: number): string[] {
  if (stripAnsi(text).length <= width) return [text]
  // Colour codes would be cut in half: wrap the plain text.
  const words = stripAnsi(text).split(' ')
  const lines: string[] = []
  let line = ''
  for (const word of words) {
    for (let w = word; w.length > 0;) {
      const candidate = line === '' ? w : `${line} ${w}`
      if (candidate.length <= width) {
        line = candidate
        w = ''
      } else if (line === '') {
        lines.push(w.slice(0, width))
        w = w.slice(width)
      } else {
        lines.push(line)
        line = ''
      }
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

/**
 * Renders rows as an aligned text table; cells may carry colour codes. A column with a maximum
 * width in `maxWidths` wraps its cells onto several lines instead of widening the table.
 */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  maxWidths: readonly (number | undefined)[] = [],
): string {
  const cells = rows.map((r) => headers.map((_, i) => wrap(r[i] ?? '', maxWidths[i] ?? Infinity)))
  const widths = headers.map((h, i) =>
    Math.max(
      stripAnsi(h).length,
      ...cells.map((r) => Math.max(...(r[i] ?? ['']).map((l) => stripAnsi(l).length))),
    ),
  )
  const line = (parts: readonly string[]) =>
    parts
      .map((c, i) => c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - stripAnsi(c).length)))
      .join('  ')
      .trimEnd()
  const body = cells.flatMap((r) => {
    const height = Math.max(...r.map((c) => c.length))
    return Array.from({ length: height }, (_, k) => line(r.map((c) => c[k] ?? '')))
  })
  return [line(headers), line(widths.map((w) => '─'.repeat(w))), ...body].join('\n')
}

/** "12 s ago", "in 4 min", for claims like `iat`, `exp` and `auth_time` (seconds). */
export function relativeTime(epochSeconds: number, nowMs = Date.now()): string {
  const delta = Math.round(epochSeconds - nowMs / 1000)
  const abs = Math.abs(delta)
  const amount =
    abs < 120
      ? `${abs} s`
      : abs < 7200
        ? `${Math.round(abs / 60)} min`
        : abs < 172800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86400)} days`
  if (delta === 0) return 'now'
  return delta < 0 ? `${amount} ago` : `in ${amount}`
}

/** Resolves with the signal's name on the first Ctrl-C (SIGINT) or SIGTERM, for commands that serve until then. */
export function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    const done = (name: string) => () => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(name)
    }
    const onInt = done('SIGINT')
    const onTerm = done('SIGTERM')
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  })
}
