/**
 * The drive's additive `--mail <url> --mail-client <id> --mail-key <pem file>` flags, in a fresh
 * process: wrong combinations stop it with one line (exit 2) before it listens; with all three,
 * it adds `email_file` and keeps every existing tool. The end-to-end mail path (token exchange,
 * the mail API) is tested in examples/mail.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportPKCS8, generateKeyPair } from 'jose'
import { startIssuer } from './support/issuer.js'
import type { TestIssuer } from './support/issuer.js'
import { McpCaller, resultOf, rpc } from './support/mcp.js'
import { newCallerKey } from './support/proof.js'

const driveDir = fileURLToPath(new URL('..', import.meta.url))
const children: ChildProcess[] = []
let issuer: TestIssuer

beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
  await issuer?.close()
})

/** Runs the drive's main with `args` until it listens or exits (bounded). */
async function run(args: string[]): Promise<{ code: number | null; output: string; url?: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@callproof/source', '--import', 'tsx', 'src/main.ts', ...args],
    { cwd: driveDir, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(child)
  let output = ''
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const deadline = Date.now() + 45_000
  for (;;) {
    const listening = /drive listening on (\S+)/.exec(output)
    if (listening) return { code: null, output, url: listening[1]! }
    if (child.exitCode !== null) return { code: child.exitCode, output }
    if (Date.now() > deadline) throw new Error(`drive neither listened nor exited:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('--mail flags', () => {
  it('refuses incomplete or wrong mail flags with one line', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drive-mail-'))
    const notAKey = join(dir, 'not-a-key.pem')
    writeFileSync(notAKey, 'hello\n')
    for (const [args, message] of [
      [
        ['--mail', 'http://127.0.0.1:1'],
        /^drive: --mail needs --mail-client <client id> and --mail-key/,
      ],
      [['--mail-client', 'drive-mcp'], /^drive: --mail-client and --mail-key need --mail <url>/],
      [
        ['--mail', 'not a url', '--mail-client', 'c', '--mail-key', notAKey],
        /^drive: --mail not a url is not an absolute URL/,
      ],
      [
        ['--mail', 'http://127.0.0.1:1', '--mail-client', 'c', '--mail-key', notAKey],
        /^drive: --mail-key: /,
      ],
    ] as const) {
      const result = await run(['--issuer', issuer.url, '--port', '0', ...args])
      expect(result.code).toBe(2)
      expect(result.output).toMatch(message)
      expect(result.output.trim().split('\n')).toHaveLength(1)
    }
  })

  it('adds email_file and keeps every other tool', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drive-mail-'))
    const keyFile = join(dir, 'drive-mcp.pem')
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    writeFileSync(keyFile, await exportPKCS8(privateKey))
    const started = await run([
      '--issuer',
      issuer.url,
      '--port',
      '0',
      '--mail',
      'http://127.0.0.1:9',
      '--mail-client',
      'drive-mcp',
      '--mail-key',
      keyFile,
    ])
    expect(started.url).toBeDefined()
    const url = started.url!
    issuer.resource = url
    const key = await newCallerKey()
    const caller = new McpCaller(
      { url, resource: url },
      key,
      await issuer.mint({ jkt: key.jkt, sub: 'erin', scope: 'drive:read drive:share' }),
    )
    await caller.connect()
    const listed = resultOf(await caller.send(rpc('tools/list', {}))) as {
      tools: { name: string }[]
    }
    expect(listed.tools.map((t) => t.name)).toEqual([
      'whoami',
      'list_files',
      'read_file',
      'write_file',
      'delete_file',
      'share_file',
      'email_file',
    ])
    // This issuer exchanges no tokens: the tool says so, naming the service, and sends nothing.
    const answer = await caller.callTool('email_file', {
      path: 'README.md',
      to: 'carol@example.com',
    })
    const result = resultOf(answer) as { isError?: boolean; content: { text: string }[] }
    expect(result.isError).toBe(true)
    expect(result.content[0]?.text).toMatch(/^no mail credential/)
  })
})
