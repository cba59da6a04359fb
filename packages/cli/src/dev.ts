/**
 * `callproof dev`: the development stack for trying things by hand — the development
 * authorization server and the drive server on loopback, until Ctrl-C.
 */
import type { AuditSink } from '@callproof/server'
import { parse, portOption } from './args.js'
import { UsageError, progress, style } from './io.js'
import type { Io } from './io.js'
import { startStack } from './stack.js'
import type { Stack } from './stack.js'

/** What `callproof dev --json` prints (one line). */
export interface DevInfo {
  readonly issuer: string
  readonly server: string
  readonly resource: string
  readonly drive: 'callproof' | 'baseline'
  readonly users: readonly { readonly id: string; readonly password: string }[]
  readonly mfaCode: string
  readonly call: string
  readonly audit?: string
}

/** The facts about a running stack that `dev` prints. */
export function devInfo(stack: Stack, audit?: string): DevInfo {
  return {
    issuer: stack.issuer,
    server: stack.url,
    resource: stack.resource,
    drive: stack.kind,
    users: stack.users.map((u) => ({ id: u.id, password: u.password })),
    mfaCode: stack.mfaCode,
    call: `callproof call ${stack.url} whoami --user alice`,
    ...(audit === undefined ? {} : { audit }),
  }
}

const HELP = `Usage: callproof dev [options]

Runs a development stack on loopback until Ctrl-C: the development authorization server
(oidc-provider; test users and their passwords are published) and the drive server behind
callproof. Prints the URLs, the test users and a ready \`callproof call\` line.

Options:
  --port <n>        drive server port (default: a free one)
  --auth-port <n>   authorization server port (default: a free one)
  --nonce           require DPoP nonces on the drive
  --audit <file>    append the drive's audit events to <file> (JSON lines; see \`callproof audit\`)
  --insecure        run the insecure baseline instead of the callproof drive (for comparison)
  --json            print one JSON line with the URLs and users instead of the text
  --verbose         show the authorization server's own log lines
  -h, --help        show this help

Development only: the users, passwords and MFA code are public knowledge.`

/**
 * Runs `callproof dev` and resolves after Ctrl-C (or SIGTERM) once everything is closed; `until`
 * replaces the signal (tests).
 */
export async function devCommand(
  argv: string[],
  io: Io,
  until?: Promise<unknown>,
): Promise<number> {
  const { values, positionals } = parse('dev', argv, {
    port: { type: 'string' },
    'auth-port': { type: 'string' },
    nonce: { type: 'boolean' },
    audit: { type: 'string' },
    insecure: { type: 'boolean' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.out(HELP)
    return 0
  }
  if (positionals.length > 0)
    throw new UsageError(`dev takes no arguments, got "${positionals[0]}"`, 'dev')
  if (values.insecure === true && (values.nonce === true || values.audit !== undefined)) {
    throw new UsageError('--nonce and --audit need the callproof drive, not --insecure', 'dev')
  }
  const drivePort = portOption('dev', values.port)
  const authPort = portOption('dev', values['auth-port'])
  let sink: { close(): Promise<void> } | undefined
  let audit: AuditSink | undefined
  if (values.audit !== undefined) {
    const { jsonLinesSink } = await import('@callproof/server')
    const fileSink = jsonLinesSink(values.audit)
    sink = fileSink
    audit = fileSink
  }
  const stack = await progress(
    values.json === true ? { ...io, interactive: false, err: () => undefined } : io,
    'starting the authorization server and the drive',
    () =>
      startStack({
        drive: values.insecure === true ? 'baseline' : 'callproof',
        ...(drivePort === undefined ? {} : { drivePort }),
        ...(authPort === undefined ? {} : { authPort }),
        ...(values.nonce === true ? { nonce: true } : {}),
        ...(audit === undefined ? {} : { audit }),
        ...(values.verbose === true ? { verbose: true } : {}),
      }),
  )
  try {
    const info = devInfo(stack, values.audit)
    if (values.json === true) {
      io.out(JSON.stringify(info))
    } else {
      const b = (t: string) => style(io, 'bold', t)
      io.out(
        [
          '',
          b('callproof development stack') +
            style(io, 'yellow', '  (development only — published test users)'),
          `  authorization server  ${info.issuer}`,
          `  drive (MCP endpoint)  ${info.server}${stack.kind === 'baseline' ? style(io, 'yellow', '  ⚠ INSECURE BASELINE') : ''}`,
          `  protected resource    ${info.server.replace(/\/mcp$/, '')}/.well-known/oauth-protected-resource/mcp`,
          ...(info.audit === undefined ? [] : [`  audit log             ${info.audit}`]),
          '',
          b('test users'),
          ...info.users.map((u) => `  ${u.id.padEnd(8)} password ${u.password}`),
          `  MFA code ${info.mfaCode}`,
          '',
          b('try'),
          `  ${info.call}`,
          `  callproof call ${info.server} delete_file path=notes/todo.txt --user alice   ${style(io, 'dim', '# MFA step-up')}`,
          `  callproof call ${info.server} share_file path=README.md with=bob --user alice  ${style(io, 'dim', '# per-call approval')}`,
          `  callproof call ${info.server} list_files   ${style(io, 'dim', '# sign in in your browser')}`,
          ...(info.audit === undefined ? [] : [`  callproof audit ${info.audit} --refused`]),
          '',
          style(io, 'dim', 'Ctrl-C to stop.'),
        ].join('\n'),
      )
    }
    await (until ?? signal())
    if (values.json !== true) io.err('callproof: stopping')
    return 0
  } finally {
    await stack.close()
    await sink?.close()
  }
}

function signal(): Promise<string> {
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
