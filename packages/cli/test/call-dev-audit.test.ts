import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jsonLinesSink } from '@callproof/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { devCommand } from '../src/dev.js'
import type { DevInfo } from '../src/dev.js'
import { toolArguments } from '../src/call.js'
import { main, memoryIo, startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'callproof-cli-'))

describe('callproof call against the development stack', () => {
  let stack: Stack
  const auditFile = join(dir, 'audit.jsonl')
  const sink = jsonLinesSink(auditFile)
  beforeAll(async () => {
    stack = await startStack({ drive: 'callproof', audit: sink })
  })
  afterAll(async () => {
    await stack?.close()
    await sink.close()
  })

  it('calls a tool as alice with --user and prints the result', async () => {
    const io = memoryIo()
    const code = await main(['call', stack.url, 'whoami', '--user', 'alice'], io)
    expect(code).toBe(0)
    const who = JSON.parse(io.stdout.join('\n')) as { sub: string; jkt: string }
    expect(who.sub).toBe('alice')
    expect(io.stderr.join('\n')).toContain('sign-in needed')
  })

  it('shows the MFA step-up as it happens', async () => {
    const io = memoryIo()
    const code = await main(
      ['call', stack.url, 'delete_file', 'path=notes/todo.txt', '--user', 'alice'],
      io,
    )
    expect(code).toBe(0)
    expect(io.stdout.join('\n')).toContain('notes/todo.txt')
    const err = io.stderr.join('\n')
    expect(err).toContain('401 insufficient_user_authentication')
    expect(err).toContain('step-up')
  })

  it('shows the per-call approval, and a denial as one clear line with exit 1', async () => {
    const approved = memoryIo()
    expect(
      await main(
        [
          'call',
          stack.url,
          'share_file',
          '--json',
          '{"path":"README.md","with":"bob"}',
          '--user',
          'alice',
        ],
        approved,
      ),
    ).toBe(0)
    expect(approved.stderr.join('\n')).toContain('403 insufficient_authorization_details')
    expect(approved.stderr.join('\n')).toContain('needs your approval (share_file)')

    const denied = memoryIo()
    const code = await main(
      [
        'call',
        stack.url,
        'share_file',
        'path=README.md',
        'with=mallory',
        '--user',
        'alice',
        '--deny',
      ],
      denied,
    )
    expect(code).toBe(1)
    const last = denied.stderr.filter((l) => l.startsWith('callproof:'))
    expect(last).toHaveLength(1)
    expect(last[0]).toContain('denied')
  })

  it('keeps the key and tokens with --state, so the next call needs no sign-in', async () => {
    const state = join(dir, 'state')
    const first = memoryIo()
    expect(
      await main(['call', stack.url, 'whoami', '--user', 'bob', '--state', state], first),
    ).toBe(0)
    expect(first.stderr.join('\n')).toContain('sign-in needed')
    const second = memoryIo()
    expect(
      await main(['call', stack.url, 'whoami', '--user', 'bob', '--state', state], second),
    ).toBe(0)
    expect(second.stderr.join('\n')).not.toContain('sign-in needed')
    // Same key both times: the stored key pair was reused.
    const jkt = (io: ReturnType<typeof memoryIo>) =>
      (JSON.parse(io.stdout.join('')) as { jkt: string }).jkt
    expect(jkt(second)).toBe(jkt(first))
    for (const file of ['key.json', 'tokens.json']) {
      expect(statSync(join(state, file)).mode & 0o777).toBe(0o600)
    }
  })

  it('reports a final refusal and an unknown test user in one line each, exit 1', async () => {
    const unknownTool = memoryIo()
    expect(await main(['call', stack.url, 'format_disk', '--user', 'alice'], unknownTool)).toBe(1)
    const refusal = unknownTool.stderr.filter((l) => l.startsWith('callproof:'))
    expect(refusal).toHaveLength(1)
    expect(refusal[0]).toContain('access_denied')
    expect(refusal[0]).toContain('no sign-in or approval can change that')

    const carol = memoryIo()
    expect(await main(['call', stack.url, 'whoami', '--user', 'carol'], carol)).toBe(1)
    expect(carol.stderr.at(-1)).toContain('test users, alice and bob')
  })

  it('lists the tools when no tool is named', async () => {
    const io = memoryIo()
    expect(await main(['call', stack.url, '--user', 'bob'], io)).toBe(0)
    expect(io.stdout.join('\n')).toMatch(/^whoami/m)
  })

  it('pretty-prints and filters the audit log the drive wrote', async () => {
    const all = memoryIo()
    expect(await main(['audit', auditFile], all)).toBe(0)
    expect(all.stdout.join('\n')).toContain('tools/call delete_file')

    const refused = memoryIo()
    expect(
      await main(['audit', auditFile, '--refused', '--tool', 'share_file', '--json'], refused),
    ).toBe(0)
    const events = refused.stdout.map(
      (l) => JSON.parse(l) as { decision: string; tool: string; reason: string },
    )
    expect(events.length).toBeGreaterThan(0)
    for (const e of events) expect(e).toMatchObject({ decision: 'refused', tool: 'share_file' })
    expect(events.map((e) => e.reason)).toContain('ERR_APPROVAL_REQUIRED')
    // The log never carries a token or a proof.
    expect(readFileSync(auditFile, 'utf8')).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./)
  })
})

describe('call: arguments and errors', () => {
  it('parses key=value as strings and key:=json as JSON, over --json', () => {
    expect(
      toolArguments(['path=a=b.txt', 'n:=3', 'tags:=["x"]'], '{"path":"x","keep":true}'),
    ).toEqual({
      path: 'a=b.txt',
      keep: true,
      n: 3,
      tags: ['x'],
    })
  })

  it('refuses a malformed pair with exit 2 and a pointer to --help', async () => {
    const io = memoryIo()
    expect(await main(['call', 'http://127.0.0.1:9/mcp', 'read_file', 'oops'], io)).toBe(2)
    expect(io.stderr).toEqual([
      'callproof: "oops" is not key=value (or key:=json) — run `callproof call --help`',
    ])
  })

  it('says what to do when the server is not there', async () => {
    const io = memoryIo()
    expect(await main(['call', 'http://127.0.0.1:9/mcp', 'whoami', '--user', 'alice'], io)).toBe(1)
    expect(io.stderr.join('\n')).toContain('cannot reach http://127.0.0.1:9/mcp')
    expect(io.stderr.join('\n')).toContain('callproof dev')
  })
})

describe('callproof dev', () => {
  it('prints one JSON line whose call line works, then stops and closes everything', async () => {
    const io = memoryIo()
    let stop: () => void = () => undefined
    const until = new Promise<void>((resolve) => (stop = resolve))
    const running = devCommand(['--json'], io, until)
    while (io.stdout.length === 0) await new Promise((r) => setTimeout(r, 50))
    expect(io.stdout).toHaveLength(1)
    const info = JSON.parse(io.stdout[0] ?? '') as DevInfo
    expect(info.users.map((u) => u.id)).toEqual(['alice', 'bob'])
    expect(info.call).toBe(`callproof call ${info.server} whoami --user alice`)
    const metadata = await fetch(`${info.issuer}/.well-known/openid-configuration`)
    expect(metadata.status).toBe(200)

    const callIo = memoryIo()
    const [, , ...args] = info.call.split(' ')
    expect(await main(['call', ...args], callIo)).toBe(0)
    expect(JSON.parse(callIo.stdout.join('\n'))).toMatchObject({ sub: 'alice' })

    stop()
    expect(await running).toBe(0)
    await expect(fetch(info.server, { method: 'POST' })).rejects.toThrow()
  })

  it('runs the insecure baseline with --insecure, labelled as such', async () => {
    const io = memoryIo()
    expect(await devCommand(['--insecure'], io, Promise.resolve())).toBe(0)
    expect(io.stdout.join('\n')).toContain('INSECURE BASELINE')
    const refused = memoryIo()
    expect(await main(['dev', '--insecure', '--nonce'], refused)).toBe(2)
  })

  it('prints the URLs, the test users and ready call lines as text', async () => {
    const io = memoryIo()
    const running = devCommand([], io, Promise.resolve())
    expect(await running).toBe(0)
    const out = io.stdout.join('\n')
    expect(out).toContain('authorization server')
    expect(out).toContain('alice-dev-password')
    expect(out).toMatch(/callproof call http:\/\/127\.0\.0\.1:\d+\/mcp whoami --user alice/)
  })
})

describe('audit: input errors', () => {
  it('skips lines that are not JSON objects and reports them on stderr', async () => {
    const file = join(dir, 'mixed.jsonl')
    writeFileSync(
      file,
      `${JSON.stringify({ time: '2026-01-01T00:00:00.000Z', decision: 'refused', status: 401, reason: 'ERR_REPLAY', httpMethod: 'POST', method: 'tools/call', tool: 'read_file' })}\nnot json\n`,
    )
    const io = memoryIo()
    expect(await main(['audit', file], io)).toBe(0)
    expect(io.stdout.join('\n')).toContain('ERR_REPLAY — replayed proof')
    expect(io.stderr).toEqual(['callproof: skipped 1 malformed line(s) (not JSON audit events)'])
  })

  it('names a missing file in one line', async () => {
    const io = memoryIo()
    expect(await main(['audit', join(dir, 'nope.jsonl')], io)).toBe(1)
    expect(io.stderr).toHaveLength(1)
    expect(io.stderr[0]).toMatch(
      new RegExp(`^callproof: cannot read audit log ${join(dir, 'nope.jsonl')} — `),
    )
  })
})
