// `callproof bridge` between the official SDK v1 client and real callproof servers: the drive
// (tools, MFA step-up, per-call approval) and the everything server (elicitation, sampling,
// progress, logging), each behind the real development authorization server.
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { EVERYTHING_SCOPES, startEverything } from '@callproof/example-everything'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAuthServer, startStack } from '../src/index.js'
import type { AuthServer, Stack } from '../src/index.js'
import { freePort } from '../src/stack.js'
import { BRIDGE_ERROR } from '../src/bridge/pump.js'
import { bridgeCommand } from '../src/bridge/command.js'
import { memoryIo } from '../src/io.js'
import { stdioBridge, streamClient } from './support/bridge.js'

const dir = mkdtempSync(join(tmpdir(), 'callproof-bridge-'))
/** For a bridge run in this process: no Ctrl-C handler of its own; it stops when stdin ends. */
const forever = new Promise<never>(() => undefined)

function text(result: object): string {
  return (((result as { content?: unknown }).content ?? []) as { type: string; text?: string }[])
    .map((c) => c.text ?? '')
    .join('\n')
}

describe('callproof bridge on stdio, the SDK v1 client, the drive', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ drive: 'callproof' })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('lists and calls the tools: delete_file after MFA step-up, share_file after approval; key on disk', async () => {
    const state = join(dir, 'alice')
    const bridge = await stdioBridge([stack.url, '--user', 'alice', '--state', state])
    try {
      const { tools } = await bridge.client.listTools()
      expect(tools.map((t) => t.name)).toEqual(
        expect.arrayContaining(['whoami', 'read_file', 'delete_file', 'share_file']),
      )
      const who = JSON.parse(
        text(await bridge.client.callTool({ name: 'whoami', arguments: {} })),
      ) as { sub: string; jkt: string }
      expect(who.sub).toBe('alice')

      const deleted = await bridge.client.callTool({
        name: 'delete_file',
        arguments: { path: 'notes/todo.txt' },
      })
      expect(deleted.isError).not.toBe(true)
      expect(text(deleted)).toContain('notes/todo.txt')
      const shared = await bridge.client.callTool({
        name: 'share_file',
        arguments: { path: 'README.md', with: 'bob' },
      })
      expect(shared.isError).not.toBe(true)
      const err = bridge.stderr()
      expect(err).toContain('403 insufficient_authorization_details')
      expect(err).toContain('needs your approval (share_file)')
      expect(err).toContain('sign-in needed')
      expect(err).toContain('401 insufficient_user_authentication')
      expect(err).toContain('step-up')
      // Nothing but JSON-RPC on stdout: the SDK client saw no unparsable line.
      expect(bridge.errors).toEqual([])
      expect(statSync(join(state, 'key.json')).mode & 0o777).toBe(0o600)
    } finally {
      await bridge.close()
    }
  })

  it('signs in through the browser once; the next launch reuses the key and tokens', async () => {
    const xdg = mkdtempSync(join(tmpdir(), 'callproof-xdg-'))
    const opened: string[] = []
    // The "browser": the development server's headless login, then the redirect to the bridge's
    // loopback listener, as a browser would follow it.
    const browser = stack.devInteraction({ user: 'bob' })
    const openUrl = async (url: string) => {
      opened.push(url)
      const redirect = await browser.authorize(new URL(url), { reason: 'authorize' })
      await fetch(redirect)
    }
    const launch = async () => {
      const io = memoryIo({ env: { XDG_CONFIG_HOME: xdg } })
      const { client, transport, stdin, stdout } = streamClient()
      const exited = bridgeCommand([stack.url], io, { stdin, stdout, openUrl, until: forever })
      await client.connect(transport)
      const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as {
        sub: string
        jkt: string
      }
      await client.close()
      expect(await exited).toBe(0)
      return { who, stderr: io.stderr.join('\n') }
    }
    const first = await launch()
    expect(first.who.sub).toBe('bob')
    expect(opened).toHaveLength(1)
    expect(first.stderr).toContain('open this URL to continue')
    const second = await launch()
    expect(second.who).toEqual(first.who)
    expect(opened).toHaveLength(1)
    expect(second.stderr).not.toContain('sign-in needed')
  })

  it('answers a refused call with a JSON-RPC error and keeps serving', async () => {
    const bridge = await stdioBridge([stack.url, '--user', 'alice', '--deny', '--state', dir])
    try {
      const refused = await bridge.client
        .callTool({ name: 'share_file', arguments: { path: 'README.md', with: 'mallory' } })
        .then(
          () => undefined,
          (error: unknown) => error,
        )
      expect(refused).toBeInstanceOf(McpError)
      expect((refused as McpError).code).toBe(BRIDGE_ERROR)
      expect((refused as McpError).message).toContain('denied')
      // The process is still there, and the next call goes through.
      const who = await bridge.client.callTool({ name: 'whoami', arguments: {} })
      expect(JSON.parse(text(who))).toMatchObject({ sub: 'alice' })
      expect(bridge.stderr()).toContain('callproof bridge:')
      expect(bridge.errors).toEqual([])
    } finally {
      await bridge.close()
    }
  })
})

describe('callproof bridge without a server', () => {
  it('answers the client with a JSON-RPC error naming the problem, and exits when it leaves', async () => {
    const io = memoryIo()
    const { client, transport, stdin, stdout } = streamClient()
    const exited = bridgeCommand(
      ['http://127.0.0.1:9/mcp', '--user', 'alice', '--state', dir],
      io,
      {
        stdin,
        stdout,
        until: forever,
      },
    )
    const refused = await client.connect(transport).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(refused).toBeInstanceOf(McpError)
    expect((refused as McpError).message).toContain('cannot reach the callproof server')
    expect(io.stderr.join('\n')).toContain('cannot reach the callproof server')
    await transport.close()
    expect(await exited).toBe(0)
  })
})

describe('callproof bridge relays what the server sends back', () => {
  let auth: AuthServer
  let everything: { url: string; close(): Promise<void> }
  beforeAll(async () => {
    const port = await freePort()
    const uri = `http://127.0.0.1:${port}/mcp`
    auth = await startAuthServer({ resources: [{ uri, scopes: [...EVERYTHING_SCOPES] }] })
    everything = await startEverything({ port, issuer: auth.issuer })
  })
  afterAll(async () => {
    await everything?.close()
    await auth?.close()
  })

  it('relays an elicitation over --listen to the HTTP client that made the call', async () => {
    const io = memoryIo()
    let stop: () => void = () => undefined
    const until = new Promise<void>((resolve) => (stop = resolve))
    const args = [everything.url, '--user', 'alice', '--state', dir, '--listen', '0']
    const exited = bridgeCommand(args, io, { until })
    const printed = /http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]+\/mcp/
    for (let i = 0; i < 600 && !printed.test(io.stderr.join('\n')); i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    const endpoint = new URL(printed.exec(io.stderr.join('\n'))?.[0] ?? '')
    const client = new Client(
      { name: 'http-only-client', version: '1.0.0' },
      { capabilities: { elicitation: {} } },
    )
    client.setRequestHandler(ElicitRequestSchema, () => ({
      action: 'accept',
      content: { username: 'alice', email: 'alice@http.example' },
    }))
    try {
      await client.connect(new StreamableHTTPClientTransport(endpoint))
      const elicited = await client.callTool({
        name: 'test_elicitation',
        arguments: { message: 'Who are you?' },
      })
      expect(text(elicited)).toContain('alice@http.example')
    } finally {
      await client.close()
      stop()
    }
    expect(await exited).toBe(0)
  })

  it('passes elicitation and sampling requests, progress and log notifications', async () => {
    const bridge = await stdioBridge([everything.url, '--user', 'alice', '--state', dir], {
      elicitation: {},
      sampling: {},
    })
    try {
      const asked: string[] = []
      bridge.client.setRequestHandler(ElicitRequestSchema, (request) => {
        asked.push(request.params.message)
        return { action: 'accept', content: { username: 'alice', email: 'alice@example.com' } }
      })
      bridge.client.setRequestHandler(CreateMessageRequestSchema, () => ({
        role: 'assistant',
        content: { type: 'text', text: 'sampled through the bridge' },
        model: 'test-model',
      }))
      const logs: unknown[] = []
      bridge.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs.push(n.params.data)
      })

      const elicited = await bridge.client.callTool({
        name: 'test_elicitation',
        arguments: { message: 'Who are you?' },
      })
      expect(asked).toEqual(['Who are you?'])
      expect(text(elicited)).toContain('alice@example.com')

      const sampled = await bridge.client.callTool({
        name: 'test_sampling',
        arguments: { prompt: 'hello' },
      })
      expect(text(sampled)).toContain('sampled through the bridge')

      const progress: number[] = []
      await bridge.client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      })
      // The SDK client runs notification handlers a microtask late and forgets a progress
      // handler as soon as the response arrives: when the last progress line and the response
      // come in one chunk from stdout, the SDK itself drops the last one. The bridge relays all.
      expect([
        [0, 50],
        [0, 50, 100],
      ]).toContainEqual(progress)

      await bridge.client.callTool({ name: 'test_tool_with_logging', arguments: {} })
      expect(logs).toEqual([
        'Tool execution started',
        'Tool processing data',
        'Tool execution completed',
      ])
      // The same race, seen from the SDK client: the progress line it dropped is reported to its
      // onerror as "a progress notification for an unknown token". Any other error is a failure.
      const lateProgress =
        /^Received a progress notification for an unknown token: .*"progress":100[,}]/
      expect(bridge.errors.filter((error) => !lateProgress.test(error.message))).toEqual([])
    } finally {
      await bridge.close()
    }
  })
})
