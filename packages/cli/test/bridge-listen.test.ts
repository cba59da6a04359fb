// `callproof bridge --listen`: the loopback HTTP endpoint, as its own process, called by the SDK
// v1 client with the printed URL, and by callers that lack the secret or come from elsewhere.
import { request } from 'node:http'
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'
import { admit, endpointPath, newSecret, SECRET_BYTES } from '../src/bridge/guard.js'
import { listen } from '../src/bridge/listen.js'
import { callproof } from './support/process.js'

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'intruder', version: '1' },
  },
})

/** A POST the way any local process can send one, with the Host and Origin it chooses. */
function post(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        // A session opened by a request that got in: its SSE stream is not read here.
        if (res.statusCode === 200) resolve({ status: 200, body: '' })
      },
    )
    req.once('error', reject)
    req.end(INITIALIZE)
  })
}

describe('callproof bridge --listen', () => {
  const xdg = mkdtempSync(join(tmpdir(), 'callproof-xdg-'))
  let stack: Stack
  let run: ReturnType<typeof callproof>
  let endpoint: URL
  beforeAll(async () => {
    stack = await startStack({ drive: 'callproof' })
    run = callproof(['bridge', stack.url, '--user', 'alice', '--listen', '0'], {
      XDG_CONFIG_HOME: xdg,
    })
    const printed = /http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]+\/mcp/
    for (let i = 0; i < 600 && !printed.test(run.err()); i++) {
      expect(run.child.exitCode).toBeNull()
      await new Promise((r) => setTimeout(r, 50))
    }
    endpoint = new URL(printed.exec(run.err())?.[0] ?? '')
  })
  afterAll(async () => {
    if (run?.child.exitCode === null) run.child.kill('SIGINT')
    await run?.exited
    await stack?.close()
  })

  it('serves the SDK client that has the printed URL', async () => {
    const secret = endpoint.pathname.split('/')[1] ?? ''
    // 256 bits of randomness, base64url.
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    // Printed exactly once.
    expect(run.err().split(secret)).toHaveLength(2)
    const client = new Client({ name: 'http-only-client', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(endpoint))
    try {
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toContain('delete_file')
      const who = await client.callTool({ name: 'whoami', arguments: {} })
      const [content] = who.content as { text: string }[]
      expect(JSON.parse(content?.text ?? '')).toMatchObject({ sub: 'alice' })
    } finally {
      await client.close()
    }
  })

  it('refuses a caller without the secret, or with a wrong one, with a bare 404', async () => {
    const port = Number(endpoint.port)
    const secret = endpoint.pathname.split('/')[1] ?? ''
    const wrong = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    for (const path of ['/mcp', '/', `/${wrong}/mcp`, `/${secret}/`, `/${secret}/mcp/x`]) {
      expect(await post(port, path)).toEqual({ status: 404, body: '' })
    }
  })

  it('refuses a web page (DNS rebinding, cross-origin) even with the secret, with a bare 403', async () => {
    const port = Number(endpoint.port)
    const path = endpoint.pathname
    expect(await post(port, path, { host: `rebound.example:${port}` })).toEqual({
      status: 403,
      body: '',
    })
    expect(await post(port, path, { origin: 'https://evil.example' })).toEqual({
      status: 403,
      body: '',
    })
    expect(await post(port, path, { origin: 'null' })).toEqual({ status: 403, body: '' })
    // The same request from a loopback page, with the secret, gets in.
    expect((await post(port, path, { origin: `http://localhost:6274` })).status).toBe(200)
  })

  it('keeps its key under $XDG_CONFIG_HOME, one directory per server, and stops on Ctrl-C', async () => {
    const dirs = readdirSync(join(xdg, 'callproof', 'bridge'))
    expect(dirs).toHaveLength(1)
    expect(dirs[0]).toMatch(/^127\.0\.0\.1_\d+-[0-9a-f]{16}$/)
    const key = join(xdg, 'callproof', 'bridge', dirs[0] ?? '', 'key.json')
    expect(statSync(key).mode & 0o777).toBe(0o600)
    run.child.kill('SIGINT')
    expect(await run.exited).toBe(0)
    await expect(post(Number(endpoint.port), endpoint.pathname)).rejects.toThrow()
  })
})

describe('the --listen guard', () => {
  const secret = newSecret()
  const path = endpointPath(secret)
  const ok = { url: path, host: '127.0.0.1:8808', origin: undefined }

  it('binds 127.0.0.1 only, never every interface', async () => {
    const endpoint = await listen({
      port: 0,
      remote: () => {
        throw new Error('no session is opened here')
      },
      events: { note: () => undefined },
    })
    try {
      expect(endpoint.address).toBe('127.0.0.1')
      expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/mcp$/)
    } finally {
      await endpoint.close()
    }
  })

  it('makes a new secret of at least 128 bits per launch', () => {
    expect(SECRET_BYTES * 8).toBeGreaterThanOrEqual(128)
    expect(Buffer.from(secret, 'base64url')).toHaveLength(SECRET_BYTES)
    expect(newSecret()).not.toBe(secret)
  })

  it('admits the endpoint on its own loopback host, with or without a loopback Origin', () => {
    expect(admit(ok, secret, 8808)).toEqual({ ok: true })
    expect(admit({ ...ok, host: 'localhost:8808' }, secret, 8808)).toEqual({ ok: true })
    expect(admit({ ...ok, url: `${path}?x=1` }, secret, 8808)).toEqual({ ok: true })
    for (const origin of ['http://127.0.0.1:8808', 'http://localhost:6274', 'http://[::1]:3000']) {
      expect(admit({ ...ok, origin }, secret, 8808)).toEqual({ ok: true })
    }
  })

  it('refuses another Host, another port, a foreign Origin, a wrong path', () => {
    for (const host of [
      undefined,
      'evil.example:8808',
      '127.0.0.1:8809',
      '127.0.0.1',
      '0.0.0.0:8808',
    ]) {
      expect(admit({ ...ok, host }, secret, 8808)).toEqual({ ok: false, status: 403 })
    }
    for (const origin of [
      'https://evil.example',
      'null',
      'http://127.0.0.1.evil.example',
      'file://',
    ]) {
      expect(admit({ ...ok, origin }, secret, 8808)).toEqual({ ok: false, status: 403 })
    }
    for (const url of [
      undefined,
      '/mcp',
      `/${secret.toUpperCase()}/mcp`,
      `/${secret}/mcp/`,
      `${path}x`,
    ]) {
      expect(admit({ ...ok, url }, secret, 8808)).toEqual({ ok: false, status: 404 })
    }
  })
})
