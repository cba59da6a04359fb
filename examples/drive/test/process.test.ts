/**
 * The pinned start command, in a fresh process:
 * `npm run start -w @callproof/example-drive -- --port <free port> --issuer <issuer url>`.
 * The drive must come up on 127.0.0.1:<port>/mcp, find the issuer's keys, and serve a call.
 *
 * The port is probed free first, and another test worker may take it before the drive binds it:
 * the drive then exits with EADDRINUSE and the test starts it again on another port. The test
 * talks to the port only after the drive has said it listens there, so a server that took the
 * port can never answer in its place.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startIssuer } from './support/issuer.js'
import type { TestIssuer } from './support/issuer.js'
import { McpCaller, toolCall, toolText } from './support/mcp.js'
import { newCallerKey } from './support/proof.js'
import { dpopChallenge } from './support/http.js'
import { readAnswer } from './support/http.js'
import { SDK_LINE } from './support/drive.js'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

let issuer: TestIssuer
let child: ChildProcess | undefined
let output = ''
beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    // npm starts a shell that starts node: end the whole group this test created, by its id.
    process.kill(-child.pid, 'SIGTERM')
    await new Promise((resolve) => child!.once('exit', resolve))
  }
  await issuer?.close()
})

/**
 * Runs the pinned start command on `port` until the drive says it listens. Resolves with the URL
 * it reports, or with `undefined` when the port was taken before the drive could bind it.
 */
async function startPinned(port: number, extra: string[] = []): Promise<string | undefined> {
  output = ''
  const proc = spawn(
    'npm',
    [
      'run',
      'start',
      '-w',
      '@callproof/example-drive',
      '--',
      '--port',
      String(port),
      '--issuer',
      issuer.url,
      // The pinned command as it is, on v1; with the additive flag on the v2 run.
      ...(SDK_LINE === 'v2' ? ['--sdk', 'v2'] : []),
      ...extra,
    ],
    { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  )
  child = proc
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const deadline = Date.now() + 45_000
  for (;;) {
    const listening = /drive listening on (\S+)/.exec(output)
    if (listening) return listening[1]
    if (proc.exitCode !== null) {
      if (/EADDRINUSE/.test(output)) return undefined
      throw new Error(`drive exited with ${proc.exitCode}:\n${output}`)
    }
    if (Date.now() > deadline) throw new Error(`drive did not come up on ${port}:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Starts the pinned command on a probed free port (again on another when it was taken). */
async function startOnFreePort(extra: string[] = []): Promise<{ port: number; reported: string }> {
  for (let attempt = 1; ; attempt++) {
    if (attempt > 3) throw new Error(`three probed ports were taken:\n${output}`)
    const port = await freePort()
    const reported = await startPinned(port, extra)
    if (reported !== undefined) return { port, reported }
  }
}

/** Ends the drive this test started (the whole group npm created, by its id). */
async function stopDrive(): Promise<void> {
  // A drive ended by a signal has no exit code but a signal code: it is gone all the same.
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve))
    process.kill(-child.pid, 'SIGTERM')
    await exited
  }
}

it('starts with the pinned command and serves a verified call', { timeout: 90_000 }, async () => {
  const { port, reported } = await startOnFreePort()

  const url = `http://127.0.0.1:${port}/mcp`
  const metadata = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`
  expect(reported).toBe(url)

  const doc = (await (await fetch(metadata)).json()) as Record<string, unknown>
  expect(doc.resource).toBe(url)
  expect(doc.authorization_servers).toEqual([issuer.url])

  // Refusal first: no credentials → 401 challenge pointing at this metadata.
  const bare = await readAnswer(
    await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(toolCall('whoami')),
    }),
  )
  expect(bare.status).toBe(401)
  expect(dpopChallenge(bare)?.params.resource_metadata).toBe(metadata)

  issuer.resource = url
  const key = await newCallerKey()
  const caller = new McpCaller(
    { url, resource: url },
    key,
    await issuer.mint({ jkt: key.jkt, sub: 'dave' }),
  )
  const who = JSON.parse(toolText(await caller.callTool('whoami'))) as Record<string, unknown>
  expect(who.sub).toBe('dave')
  expect(who.jkt).toBe(key.jkt)
  toolText(
    await caller.callTool('write_file', { path: 'hello.txt', content: 'from a fresh process' }),
  )
  expect(toolText(await caller.callTool('read_file', { path: 'hello.txt' }))).toBe(
    'from a fresh process',
  )
  expect(issuer.jwksFetches).toBeGreaterThan(0)
})

it(
  '--audit <file> appends the JSON-lines audit event of every decision',
  { timeout: 90_000 },
  async () => {
    await stopDrive()
    const file = join(mkdtempSync(join(tmpdir(), 'drive-audit-')), 'audit.jsonl')
    const { port, reported } = await startOnFreePort(['--audit', file])
    const url = `http://127.0.0.1:${port}/mcp`
    expect(reported).toBe(url)
    expect(output).toContain(`audit ${file}`)

    const bare = await readAnswer(
      await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify(toolCall('whoami')),
      }),
    )
    expect(bare.status).toBe(401)
    issuer.resource = url
    const key = await newCallerKey()
    const caller = new McpCaller(
      { url, resource: url },
      key,
      await issuer.mint({ jkt: key.jkt, sub: 'erin' }),
    )
    expect(JSON.parse(toolText(await caller.callTool('whoami')))).toMatchObject({ sub: 'erin' })

    // The drive writes through a file stream: read until the call's event is there (bounded).
    type Event = Record<string, unknown>
    let events: Event[] = []
    const allowedCall = (e: Event) =>
      e.decision === 'allowed' && e.tool === 'whoami' && e.sub === 'erin'
    for (const deadline = Date.now() + 20_000; !events.some(allowedCall);) {
      if (Date.now() > deadline)
        throw new Error(`no allowed whoami in ${file}:\n${readFileSync(file, 'utf8')}`)
      await new Promise((r) => setTimeout(r, 50))
      events = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Event)
    }
    expect(events).toContainEqual(
      expect.objectContaining({
        decision: 'refused',
        status: 401,
        reason: 'ERR_NO_CREDENTIALS',
        method: 'tools/call',
      }),
    )
    expect(events.find(allowedCall)).toMatchObject({ jkt: key.jkt, method: 'tools/call' })
    await stopDrive()
  },
)
