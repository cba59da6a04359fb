/**
 * Fuzzing on the wire: raw bytes to the drive served by @hono/node-server on 127.0.0.1, for what
 * `Request` objects cannot express: Content-Length lies (shorter and longer than the body),
 * chunked bodies with wrong chunk sizes, Content-Length together with Transfer-Encoding (request
 * smuggling shapes), duplicate Content-Length lines, and header lines with odd bytes.
 *
 * Properties: no answer is a 5xx, the server keeps serving honest requests afterwards, and a body
 * that did not arrive exactly as the proof names it never runs a tool (spy storage + audit).
 */
import fc from 'fast-check'
import { createConnection } from 'node:net'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memorySink } from '../src/index.js'
import type { AuditEvent } from '../src/index.js'
import { SpyDrives, fuzzReplay } from './support/fuzz-drive.js'
import { createDriveApp } from '../../../examples/drive/src/index.js'
import { startIssuer } from '../../../examples/drive/test/support/issuer.js'
import type { TestIssuer } from '../../../examples/drive/test/support/issuer.js'
import { bindingOf, makeProof, newCallerKey } from '../../../examples/drive/test/support/proof.js'
import type { CallerKey } from '../../../examples/drive/test/support/proof.js'

let issuer: TestIssuer
let server: ReturnType<typeof serve>
let port = 0
let resource = ''
let key: CallerKey
let token = ''
/** The caller's `Mcp-Session-Id`, named by every POST but initialize, as an honest client does. */
let session = ''
const drives = new SpyDrives()
const audit = memorySink()

beforeAll(async () => {
  issuer = await startIssuer()
  // Listen first: the resource URI names the port, known only once listening.
  const started: { app?: ReturnType<typeof createDriveApp> } = {}
  server = serve({
    fetch: (request: Request) =>
      started.app === undefined
        ? new Response('starting', { status: 503 })
        : started.app.fetch(request),
    port: 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve) => server.once('listening', resolve))
  port = (server.address() as AddressInfo).port
  resource = `http://127.0.0.1:${port}/mcp`
  issuer.resource = resource
  started.app = createDriveApp({ issuer: issuer.url, resource, drives, audit })
  key = await newCallerKey()
  token = await issuer.mint({ jkt: key.jkt, expiresIn: 3600 })
  const initialize = {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'fuzz-http', version: '0' },
    },
  }
  const opened = await fetch(resource, {
    method: 'POST',
    headers: {
      authorization: `DPoP ${token}`,
      dpop: await makeProof(key, {
        htm: 'POST',
        htu: resource,
        accessToken: token,
        mcp: await bindingOf(initialize),
      }),
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(initialize),
  })
  await opened.text()
  session = opened.headers.get('mcp-session-id') ?? ''
  expect(session, `initialize answered ${opened.status}`).not.toBe('')
})

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    if ('closeAllConnections' in server) server.closeAllConnections()
  })
  await issuer.close()
})

/**
 * Writes bytes and collects whatever comes back until the server closes (or the time is up).
 * `halfClose` ends our side at once: for bodies shorter than announced, which a server would
 * otherwise wait for.
 */
function rawExchange(bytes: Buffer, halfClose: boolean, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks).toString('latin1'))
    }
    const timer = setTimeout(done, timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', done)
    socket.on('error', done)
    socket.write(bytes, () => {
      if (halfClose) socket.end()
    })
  })
}

let id = 1
async function honestCall(): Promise<{ body: string; proof: string; path: string }> {
  const path = `raw/${id}.txt`
  const message = {
    jsonrpc: '2.0',
    id: id++,
    method: 'tools/call',
    params: { name: 'write_file', arguments: { path, content: `content ${id}` } },
  }
  const proof = await makeProof(key, {
    htm: 'POST',
    htu: resource,
    accessToken: token,
    mcp: await bindingOf(message),
  })
  return { body: JSON.stringify(message), proof, path }
}

function head(lines: string[]): string {
  return [
    `POST /mcp HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    ...lines,
    'Connection: close',
    '',
    '',
  ].join('\r\n')
}

const statuses = (text: string) =>
  [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))

describe('fuzz: raw HTTP framing', () => {
  it('Content-Length lies, bad chunking and smuggling shapes: no 5xx, no tool run, still serving', async () => {
    const framing = fc.oneof(
      fc.record({ kind: fc.constant('honest' as const), n: fc.constant(0) }),
      fc.record({ kind: fc.constant('chunked' as const), n: fc.integer({ min: 1, max: 64 }) }),
      fc.record({ kind: fc.constant('cl-short' as const), n: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ kind: fc.constant('cl-long' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({
        kind: fc.constant('chunk-size-lie' as const),
        n: fc.integer({ min: -5, max: 5 }).filter((n) => n !== 0),
      }),
      fc.record({ kind: fc.constant('cl-and-te' as const), n: fc.integer({ min: -5, max: 5 }) }),
      fc.record({ kind: fc.constant('cl-twice' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('cl-garbage' as const), n: fc.integer({ min: 0, max: 4 }) }),
    )
    let cases = 0
    let served = 0
    await fc.assert(
      fc.asyncProperty(framing, async ({ kind, n }) => {
        const { body, proof, path } = await honestCall()
        const len = Buffer.byteLength(body)
        const common = [
          `Authorization: DPoP ${token}`,
          `DPoP: ${proof}`,
          'Content-Type: application/json',
          'Accept: application/json, text/event-stream',
          `Mcp-Session-Id: ${session}`,
        ]
        let bytes: string
        if (kind === 'honest') bytes = head([...common, `Content-Length: ${len}`]) + body
        else if (kind === 'chunked') {
          let chunked = ''
          for (let i = 0; i < body.length; i += n) {
            const piece = body.slice(i, i + n)
            chunked += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`
          }
          bytes = head([...common, 'Transfer-Encoding: chunked']) + chunked + '0\r\n\r\n'
        } else if (kind === 'cl-short')
          bytes = head([...common, `Content-Length: ${Math.max(0, len - n)}`]) + body
        else if (kind === 'cl-long') bytes = head([...common, `Content-Length: ${len + n}`]) + body
        else if (kind === 'chunk-size-lie') {
          bytes =
            head([...common, 'Transfer-Encoding: chunked']) +
            `${(len + n).toString(16)}\r\n${body}\r\n0\r\n\r\n`
        } else if (kind === 'cl-and-te') {
          bytes =
            head([...common, `Content-Length: ${len + n}`, 'Transfer-Encoding: chunked']) +
            `${len.toString(16)}\r\n${body}\r\n0\r\n\r\n`
        } else if (kind === 'cl-twice') {
          bytes = head([...common, `Content-Length: ${len}`, `Content-Length: ${len + n}`]) + body
        } else {
          const lie = ['', '-1', `${len}x`, `0x${len.toString(16)}`, ` ${len} ${len}`][n]!
          bytes = head([...common, `Content-Length: ${lie}`]) + body
        }
        const before = { ops: drives.ops.length, events: audit.events.length }
        const waits = kind === 'cl-long' || kind === 'chunk-size-lie' || kind === 'cl-and-te'
        const answer = await rawExchange(Buffer.from(bytes, 'latin1'), waits)
        const codes = statuses(answer)
        const ops = drives.ops.slice(before.ops)
        const allowed = audit.events
          .slice(before.events)
          .filter((e: AuditEvent) => e.decision === 'allowed')
        const label = `${kind} ${n}: ${answer.slice(0, 300)}`
        cases++
        expect(
          codes.every((c) => c < 500),
          label,
        ).toBe(true)
        if (kind === 'honest' || kind === 'chunked') {
          // The controls: framed correctly, the call runs, once.
          expect(codes, label).toEqual([200])
          expect(
            ops.map((o) => `${o.op} ${o.path}`),
            label,
          ).toEqual([`write ${path}`])
          served++
        } else {
          expect(ops, label).toEqual([])
          expect(allowed, label).toEqual([])
        }
      }),
      { ...fuzzReplay, numRuns: 250, interruptAfterTimeLimit: 8000 },
    )
    expect(cases).toBeGreaterThan(50)
    expect(served).toBeGreaterThan(0)
    // Still serving after all that.
    const { body, proof } = await honestCall()
    const res = await fetch(`${resource}`, {
      method: 'POST',
      headers: {
        authorization: `DPoP ${token}`,
        dpop: proof,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session,
      },
      body,
    })
    expect(res.status).toBe(200)
  }, 30_000)
})
