/**
 * `callproof dev`: the development stack for trying things by hand — the development
 * authorization server and the drive server on loopback, until Ctrl-C. With `--resource`, the
 * authorization server alone, issuing tokens for the team's own MCP server.
 */
import type { DevResource } from '@callproof/dev-auth-server'
import { isLoopbackHost } from '@callproof/core'
import type { AuditSink } from '@callproof/server'
import { parse, portOption } from './args.js'
import { UsageError, interrupted, progress, style } from './io.js'
import type { Io } from './io.js'
import { safeText } from './terminal.js'
import { startAuthServer, startStack } from './stack.js'
import type { AuthServer, Stack } from './stack.js'

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

/** What `callproof dev --resource … --json` prints (one line): no drive, the team's own resources. */
export interface DevAuthInfo {
  readonly issuer: string
  readonly drive: 'none'
  /** Each resource with its scopes and a runnable line that signs in as alice and lists the tools. */
  readonly resources: readonly {
    readonly uri: string
    readonly scopes: readonly string[]
    readonly call: string
  }[]
  readonly users: readonly { readonly id: string; readonly password: string }[]
  readonly mfaCode: string
}

/** The facts about a running authorization server that `dev --resource` prints. */
export function devAuthInfo(auth: AuthServer): DevAuthInfo {
  return {
    issuer: auth.issuer,
    drive: 'none',
    resources: auth.resources.map((r) => ({
      uri: r.uri,
      scopes: [...r.scopes],
      call: `callproof call ${r.uri} --user alice`,
    })),
    users: auth.users.map((u) => ({ id: u.id, password: u.password })),
    mfaCode: auth.mfaCode,
  }
}

// RFC 6749 §3.3 scope-token: printable ASCII without space, '"' and '\'.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

/**
 * Pairs `--resource` and `--scopes` by position (the first `--scopes` belongs to the first
 * `--resource`, …) and checks them the way `createCallproof` and the authorization server will,
 * so a mistake ends here in one line instead of as `invalid_target` at the first call.
 */
function resourceOptions(uris: readonly string[], scopeLists: readonly string[]): DevResource[] {
  const usage = (message: string) => new UsageError(message, 'dev')
  if (scopeLists.length !== uris.length) {
    throw usage(
      scopeLists.length === 0
        ? "--resource needs --scopes, the scopes your tools' policies name (e.g. --scopes notes:read,notes:write)"
        : `give one --scopes per --resource, in the same order (got ${uris.length} --resource, ${scopeLists.length} --scopes)`,
    )
  }
  const seen = new Set<string>()
  return uris.map((raw, i) => {
    const url = URL.parse(raw)
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw usage(`--resource "${raw}" is not an http(s) URL (e.g. http://127.0.0.1:3000/mcp)`)
    }
    if (url.search !== '' || url.hash !== '' || raw.includes('#')) {
      throw usage(`--resource ${raw} must not have a query or fragment (RFC 8707 §2)`)
    }
    // callproof's server refuses such a resource, and its client such a server: a token for it
    // could never be used.
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      throw usage(
        `--resource ${raw} must use https (http is allowed on loopback only: 127.0.0.1, [::1], localhost)`,
      )
    }
    // The server names its resource in this normal form (createCallproof), and clients send that.
    const uri = url.href
    if (seen.has(uri)) throw usage(`--resource ${uri} is given twice`)
    seen.add(uri)
    const list = scopeLists[i] ?? ''
    const scopes = [...new Set(list.split(/[\s,]+/).filter((s) => s !== ''))]
    if (scopes.length === 0) {
      throw usage(
        `--scopes "${list}" for ${uri} names no scope (e.g. --scopes notes:read,notes:write)`,
      )
    }
    const bad = scopes.find((s) => !SCOPE_TOKEN.test(s))
    if (bad !== undefined) {
      throw usage(
        `--scopes: "${bad}" is not a scope (RFC 6749 §3.3: printable ASCII, no quotes or backslashes)`,
      )
    }
    return { uri, scopes }
  })
}

const HELP = `Usage: callproof dev [options]

Runs a development stack on loopback until Ctrl-C: the development authorization server
(oidc-provider; test users and their passwords are published) and the drive server behind
callproof. Prints the URLs, the test users and a ready \`callproof call\` line.

With --resource, runs the authorization server alone, for your own MCP server: it issues
tokens for that resource (and no other), and the drive does not start.

  callproof dev --resource http://127.0.0.1:3000/mcp --scopes notes:read,notes:write --auth-port 4000

Options:
  --resource <uri>  your MCP server's resource URI, exactly as its createCallproof({ resource })
                    names it; repeat for several servers
  --scopes <list>   the scopes that resource's tools use, comma-separated; one --scopes per
                    --resource, in the same order
  --auth-port <n>   authorization server port (default: a free one); the issuer is then
                    http://127.0.0.1:<n>, what your server names in \`issuers\`
  --port <n>        drive server port (default: a free one)
  --nonce           require DPoP nonces on the drive
  --audit <file>    append the drive's audit events to <file> (JSON lines; see \`callproof audit\`)
  --insecure        run the insecure baseline instead of the callproof drive (for comparison)
  --json            print one JSON line with the URLs and users instead of the text
  --verbose         show the authorization server's own log lines
  -h, --help        show this help

--port, --nonce, --audit and --insecure are about the drive and cannot go with --resource.
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
    resource: { type: 'string', multiple: true },
    scopes: { type: 'string', multiple: true },
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
  const authPort = portOption('dev', values['auth-port'], '--auth-port')
  if (values.resource !== undefined) {
    const driveOnly = (['port', 'nonce', 'audit', 'insecure'] as const).find(
      (name) => values[name] !== undefined,
    )
    if (driveOnly !== undefined) {
      throw new UsageError(
        `--${driveOnly} is about the drive, which does not start with --resource`,
        'dev',
      )
    }
    const resources = resourceOptions(values.resource, values.scopes ?? [])
    for (const { uri } of resources) {
      const url = new URL(uri)
      // The port the resource server listens on: a URL leaves its scheme's default port out.
      // --auth-port 0 takes a free port, which is never one a server already listens on.
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
      if (
        authPort !== undefined &&
        authPort !== 0 &&
        isLoopbackHost(url.hostname) &&
        port === authPort
      ) {
        throw new UsageError(
          `--auth-port ${authPort} is the port of --resource ${uri}; the authorization server needs its own`,
          'dev',
        )
      }
    }
    return serveResources(resources, authPort, values, io, until)
  }
  if (values.scopes !== undefined) {
    throw new UsageError("--scopes goes with --resource (the drive's scopes are fixed)", 'dev')
  }
  const drivePort = portOption('dev', values.port)
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
          ...(info.audit === undefined ? [] : [`  audit log             ${safeText(info.audit)}`]),
          '',
          b('test users'),
          ...info.users.map((u) => `  ${u.id.padEnd(8)} password ${u.password}`),
          `  MFA code ${info.mfaCode}`,
          '',
          b('try'),
          `  npx ${info.call}`,
          `  npx callproof call ${info.server} delete_file path=notes/todo.txt --user alice   ${style(io, 'dim', '# MFA step-up')}`,
          `  npx callproof call ${info.server} share_file path=README.md with=bob --user alice  ${style(io, 'dim', '# per-call approval')}`,
          `  npx callproof call ${info.server} list_files   ${style(io, 'dim', '# sign in in your browser')}`,
          ...(info.audit === undefined ? [] : [`  npx callproof audit ${info.audit} --refused`]),
          '',
          style(io, 'dim', 'Ctrl-C to stop.'),
        ].join('\n'),
      )
    }
    await (until ?? interrupted())
    if (values.json !== true) io.err('callproof: stopping')
    return 0
  } finally {
    await stack.close()
    await sink?.close()
  }
}

/** `dev --resource`: the authorization server alone, for the team's own servers. */
async function serveResources(
  resources: readonly DevResource[],
  authPort: number | undefined,
  flags: { json?: boolean; verbose?: boolean },
  io: Io,
  until: Promise<unknown> | undefined,
): Promise<number> {
  const auth = await progress(
    flags.json === true ? { ...io, interactive: false, err: () => undefined } : io,
    'starting the authorization server',
    () =>
      startAuthServer({
        resources,
        ...(authPort === undefined ? {} : { authPort }),
        ...(flags.verbose === true ? { verbose: true } : {}),
      }),
  )
  try {
    const info = devAuthInfo(auth)
    if (flags.json === true) {
      io.out(JSON.stringify(info))
    } else {
      const b = (t: string) => style(io, 'bold', t)
      const dim = (t: string) => style(io, 'dim', t)
      const first = info.resources[0]
      io.out(
        [
          '',
          b('callproof development authorization server') +
            style(io, 'yellow', '  (development only — published test users)'),
          `  issuer                ${info.issuer}${authPort === undefined ? dim('   (a free port: --auth-port <n> keeps it the same between runs)') : ''}`,
          ...info.resources.map(
            (r) =>
              `  issues tokens for     ${safeText(r.uri)}  ${dim(`scopes ${safeText(r.scopes.join(' '))}`)}`,
          ),
          `  drive example         not started: --resource serves your own server`,
          '',
          b('your server'),
          ...info.resources.map(
            (r) =>
              `  createCallproof({ resource: '${safeText(r.uri)}', issuers: '${info.issuer}', tools })`,
          ),
          dim('  (a token names exactly one of the resources above; any other is invalid_target)'),
          '',
          b('test users'),
          ...info.users.map((u) => `  ${u.id.padEnd(8)} password ${u.password}`),
          `  MFA code ${info.mfaCode}`,
          '',
          b('try, once your server listens'),
          ...info.resources.flatMap((r) => [
            `  npx ${safeText(r.call)}   ${dim('# signs in as alice, lists the tools she can see')}`,
            `  npx callproof call ${safeText(r.uri)} <tool> key=value --user alice   ${dim('# calls one; step-up and approvals as needed')}`,
          ]),
          ...(first === undefined
            ? []
            : [
                `  npx callproof call ${first.uri} <tool> key=value   ${dim('# sign in in your browser instead')}`,
              ]),
          '',
          dim('Ctrl-C to stop.'),
        ].join('\n'),
      )
    }
    await (until ?? interrupted())
    if (flags.json !== true) io.err('callproof: stopping')
    return 0
  } finally {
    await auth.close()
  }
}
