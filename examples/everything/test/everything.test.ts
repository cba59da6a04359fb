/**
 * examples/everything end to end, with real parts only: the pinned start command in a fresh
 * process, the real development authorization server (tokens from a headless sign-in on its real
 * pages), @callproof/client's signing fetch behind the loopback proxy, and the real MCP SDK
 * client talking to the proxy without any credentials.
 *
 * The server's port must be in the resource URI the authorization server is started with, so it
 * is probed first; another process may take it in between, and then both start again on another
 * port. The test talks to the port only after the server has said it listens there.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { devInteraction, startDevAuthServer } from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import { createCallproofFetch, systemBrowserInteraction } from '@callproof/client'
import { EVERYTHING_SCOPES } from '../src/index.js'
import { startSigningProxy } from '../src/proxy.js'
import type { SigningProxy } from '../src/proxy.js'

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

let auth: DevAuthServer | undefined
let child: ChildProcess | undefined
let output = ''
let url = ''
const closers: (() => Promise<unknown>)[] = []

/** The pinned command on `port`: the URL it reports, or `undefined` when the port was taken. */
async function startPinned(port: number, issuer: string): Promise<string | undefined> {
  output = ''
  const proc = spawn(
    'npm',
    [
      'run',
      'start',
      '-w',
      '@callproof/example-everything',
      '--',
      '--port',
      String(port),
      '--issuer',
      issuer,
    ],
    { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  )
  child = proc
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const deadline = Date.now() + 45_000
  for (;;) {
    const listening = /everything listening on (\S+)/.exec(output)
    if (listening) return listening[1]
    if (proc.exitCode !== null) {
      if (/EADDRINUSE/.test(output)) return undefined
      throw new Error(`everything exited with ${proc.exitCode}:\n${output}`)
    }
    if (Date.now() > deadline) throw new Error(`everything did not come up on ${port}:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

beforeAll(async () => {
  for (let attempt = 1; url === ''; attempt++) {
    if (attempt > 3) throw new Error(`three probed ports were taken:\n${output}`)
    const port = await freePort()
    auth = await startDevAuthServer({
      resources: [{ uri: `http://127.0.0.1:${port}/mcp`, scopes: [...EVERYTHING_SCOPES] }],
      logger: { warn: () => {}, info: () => {} },
    })
    const reported = await startPinned(port, auth.issuer)
    if (reported === undefined) await auth.close()
    else url = reported
  }
}, 120_000)

afterAll(async () => {
  for (const close of closers) await close()
  if (child?.pid !== undefined && child.exitCode === null) {
    // npm starts a shell that starts node: end the whole group this test created, by its id.
    process.kill(-child.pid, 'SIGTERM')
    await new Promise((resolve) => child!.once('exit', resolve))
  }
  await auth?.close()
})

/** A proxy signing as `user` (a headless sign-in on the authorization server's real pages). */
async function proxyAs(user: string): Promise<SigningProxy> {
  const pages = devInteraction({ user })
  const interaction = systemBrowserInteraction({
    open: async (href) => {
      const callback = await pages.authorize(new URL(href), { reason: 'authorize' })
      await (await fetch(callback)).body?.cancel()
    },
  })
  const { fetch } = await createCallproofFetch(url, { interaction, development: true })
  const proxy = await startSigningProxy({ target: url, fetch })
  closers.push(
    () => proxy.close(),
    () => interaction.close(),
  )
  return proxy
}

/** An MCP SDK client with no credentials at all, talking to a proxy. */
async function clientOf(proxy: SigningProxy): Promise<Client> {
  const client = new Client({ name: 'plain', version: '0.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url)))
  closers.push(() => client.close())
  return client
}

/** A raw request to the proxy with a chosen Host header (fetch cannot set one). */
function rawStatus(proxy: SigningProxy, headers: Record<string, string>): Promise<number> {
  const target = new URL(proxy.url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: target.port,
        path: '/mcp',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      },
    )
    req.once('error', reject)
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }))
  })
}

describe('examples/everything', () => {
  it('starts with the pinned command, prints its URL, and refuses a request without credentials', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
    const bare = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    })
    expect(bare.status).toBe(401)
    expect(bare.headers.get('www-authenticate')).toContain(
      `resource_metadata="${new URL(url).origin}/.well-known/oauth-protected-resource/mcp"`,
    )
  })

  it(
    'serves every primitive through the signing proxy, per caller',
    { timeout: 60_000 },
    async () => {
      const alice = await clientOf(await proxyAs('alice'))
      const text = await alice.readResource({ uri: 'test://static-text' })
      expect(text.contents[0]).toMatchObject({
        text: 'This is the content of the static text resource.',
      })
      const prompt = await alice.getPrompt({
        name: 'test_prompt_with_arguments',
        arguments: { arg1: 'hello', arg2: 'world' },
      })
      expect(prompt.messages[0]?.content).toEqual({
        type: 'text',
        text: "Prompt with arguments: arg1='hello', arg2='world'",
      })
      const called = await alice.callTool({ name: 'whoami' })
      const who = JSON.parse((called.content as { text: string }[])[0]!.text) as { sub: string }
      expect(who.sub).toBe('alice')
      // The operator's resource is hidden from alice, and refused when she names it anyway.
      const listed = (await alice.listResources()).resources.map((r) => r.uri)
      expect(listed).toContain('test://static-text')
      expect(listed).not.toContain('test://operator-notes')
      await expect(alice.readResource({ uri: 'test://operator-notes' })).rejects.toThrow(
        /refused this request \(access_denied\)/,
      )

      const bob = await clientOf(await proxyAs('bob'))
      expect((await bob.listResources()).resources.map((r) => r.uri)).toContain(
        'test://operator-notes',
      )
      expect((await bob.readResource({ uri: 'test://operator-notes' })).contents[0]).toMatchObject({
        text: 'operator only',
      })
    },
  )

  it(
    'the proxy, which holds a token, refuses a foreign Host or Origin (DNS rebinding)',
    { timeout: 60_000 },
    async () => {
      const proxy = await proxyAs('alice')
      const port = new URL(proxy.url).port
      expect(await rawStatus(proxy, { host: 'evil.example' })).toBe(403)
      expect(await rawStatus(proxy, { host: `evil.example:${port}` })).toBe(403)
      expect(
        await rawStatus(proxy, { host: `127.0.0.1:${port}`, origin: 'http://evil.example' }),
      ).toBe(403)
      expect(
        await rawStatus(proxy, { host: `localhost:${port}`, origin: `http://localhost:${port}` }),
      ).toBe(200)
    },
  )
})
