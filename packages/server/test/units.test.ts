import { describe, expect, it } from 'vitest'
import { createServer } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  MemorySessionStore,
  checkOrigin,
  defaultOriginPolicy,
  jsonLinesSink,
  metadataPathFor,
  metadataUrlFor,
  protectedResourceMetadata,
} from '../src/index.js'
// Internals of the request path, tested where they live (not part of the public API).
import { readJsonBody } from '../src/body.js'
import { nodeBodySource, nodeHeaders } from '../src/node.js'
import { newSessionId, sameOwner } from '../src/sessions.js'
import type { AuditEvent } from '../src/index.js'

describe('metadata', () => {
  it('inserts the well-known prefix before the resource path', () => {
    expect(metadataPathFor('http://127.0.0.1:3000/mcp')).toBe(
      '/.well-known/oauth-protected-resource/mcp',
    )
    expect(metadataPathFor('https://x.example/a/b/')).toBe(
      '/.well-known/oauth-protected-resource/a/b',
    )
    expect(metadataPathFor('https://x.example/')).toBe('/.well-known/oauth-protected-resource')
    expect(metadataUrlFor('https://x.example/mcp')).toBe(
      'https://x.example/.well-known/oauth-protected-resource/mcp',
    )
  })

  it('publishes what RFC 9728 and RFC 9449 ask for', () => {
    expect(
      protectedResourceMetadata({
        resource: 'https://x.example/mcp',
        authorizationServers: ['https://as.example'],
        scopesSupported: ['b', 'a', 'b'],
        algorithms: ['ES256'],
      }),
    ).toEqual({
      resource: 'https://x.example/mcp',
      authorization_servers: ['https://as.example'],
      scopes_supported: ['a', 'b'],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: ['ES256'],
      dpop_bound_access_tokens_required: true,
    })
  })
})

describe('origin policy', () => {
  const policy = defaultOriginPolicy('http://127.0.0.1:3000/mcp')
  const request = (headers: Record<string, string>) =>
    new Request('http://127.0.0.1:3000/mcp', { method: 'POST', headers })
  it('accepts loopback hosts and no Origin (non-browser clients)', () => {
    expect(checkOrigin(request({ host: '127.0.0.1:3000' }), policy)).toBeUndefined()
    expect(checkOrigin(request({ host: 'localhost:3000' }), policy)).toBeUndefined()
  })
  it('refuses a rebinding Host, a foreign Origin and the null Origin', () => {
    expect(checkOrigin(request({ host: 'evil.example:3000' }), policy)).toMatch(/Host/)
    expect(checkOrigin(request({ host: '127.0.0.1:3001' }), policy)).toMatch(/Host/)
    expect(checkOrigin(request({ origin: 'http://evil.example' }), policy)).toMatch(/Origin/)
    expect(checkOrigin(request({ origin: 'null' }), policy)).toMatch(/Origin/)
  })
  it('does not check Host for a public resource by default', () => {
    const open = defaultOriginPolicy('https://drive.example/mcp')
    expect(open.allowedHosts).toBeUndefined()
    expect(
      checkOrigin(
        new Request('https://drive.example/mcp', { headers: { origin: 'https://drive.example' } }),
        open,
      ),
    ).toBeUndefined()
  })
})

describe('memory session store', () => {
  const owner = { sub: 'alice', clientId: 'c', jkt: 'k' }
  it('expires sessions and refuses new ones when full instead of evicting live ones', async () => {
    let now = 0
    const store = new MemorySessionStore({ maxSessions: 2, clock: () => now })
    await store.create('a', owner, 10)
    await store.create('b', owner, 20)
    await expect(store.create('c', owner, 10)).rejects.toThrow(/full/)
    expect(await store.owner('a')).toEqual(owner)
    now = 10_000
    expect(await store.owner('a')).toBeUndefined()
    await store.create('c', owner, 10)
    expect(await store.owner('b')).toEqual(owner)
    await store.delete('b')
    expect(await store.owner('b')).toBeUndefined()
  })
  it('compares owners on subject, client and key', () => {
    expect(sameOwner(owner, { ...owner })).toBe(true)
    expect(sameOwner(owner, { ...owner, sub: 'bob' })).toBe(false)
    expect(sameOwner(owner, { ...owner, clientId: 'd' })).toBe(false)
    expect(sameOwner(owner, { ...owner, jkt: 'other' })).toBe(false)
  })
  it('makes unguessable ids', () => {
    const ids = new Set(Array.from({ length: 100 }, newSessionId))
    expect(ids.size).toBe(100)
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })
})

describe('jsonLinesSink', () => {
  const event: AuditEvent = {
    time: '2026-01-01T00:00:00.000Z',
    requestId: 'r',
    decision: 'refused',
    reason: 'ERR_REPLAY',
    httpMethod: 'POST',
  }
  it('writes one JSON object per line to a stream', () => {
    let out = ''
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out += chunk.toString()
        callback()
      },
    })
    const sink = jsonLinesSink(stream)
    sink.write(event)
    sink.write(event)
    expect(
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as unknown),
    ).toEqual([event, event])
  })
  it('refuses at creation a file it cannot open, with the path and the reason', () => {
    const path = join(tmpdir(), 'no-such-dir-callproof', 'x', 'audit.jsonl')
    expect(() => jsonLinesSink(path)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTIONS',
        message: expect.stringMatching(/audit file .*no-such-dir-callproof.* ENOENT/) as unknown,
      }),
    )
  })

  it.runIf(process.platform === 'linux')(
    'turns a file that fails later (a full disk: /dev/full) into failing writes, not a crash',
    async () => {
      const sink = jsonLinesSink('/dev/full')
      sink.write(event)
      // The stream reports ENOSPC asynchronously, whenever the write reaches the file: poll for
      // the failing write (each attempt queues one more write that fails too), up to a deadline
      // far beyond what a busy machine needs.
      const deadline = Date.now() + 10_000
      let failed: unknown
      while (failed === undefined) {
        if (Date.now() > deadline) throw new Error('no write failed within 10 s')
        await new Promise((resolve) => setTimeout(resolve, 10))
        try {
          sink.write(event)
        } catch (error) {
          failed = error
        }
      }
      expect(failed).toBeInstanceOf(Error)
      expect((failed as Error).message).toMatch(/audit file \/dev\/full failed: .*ENOSPC/)
      await sink.close()
    },
  )

  it('appends to a file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'callproof-audit-')), 'audit.jsonl')
    const sink = jsonLinesSink(path)
    sink.write(event)
    await sink.close()
    const again = jsonLinesSink(path)
    again.write(event)
    await again.close()
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(2)
  })
})

describe('readJsonBody', () => {
  const post = (body: string) => new Request('http://127.0.0.1/mcp', { method: 'POST', body })
  it('refuses a batch with ERR_BATCH_NOT_SUPPORTED', async () => {
    await expect(
      readJsonBody(post('[{"jsonrpc":"2.0","id":1,"method":"ping"}]'), 1024),
    ).rejects.toMatchObject({
      code: 'ERR_BATCH_NOT_SUPPORTED',
    })
  })
  it('refuses non-objects and non-JSON with ERR_MALFORMED_BODY', async () => {
    for (const body of ['1', '"x"', 'null', '{']) {
      await expect(readJsonBody(post(body), 1024)).rejects.toMatchObject({
        code: 'ERR_MALFORMED_BODY',
      })
    }
  })
  it('refuses a declared Content-Length over the limit without reading', async () => {
    const request = new Request('http://127.0.0.1/mcp', {
      method: 'POST',
      body: '{}',
      headers: { 'content-length': '5000' },
    })
    await expect(readJsonBody(request, 1024)).rejects.toMatchObject({ code: 'ERR_BODY_TOO_LARGE' })
  })
  it('parses a message', async () => {
    await expect(readJsonBody(post('{"a":1}'), 1024)).resolves.toEqual({ a: 1 })
  })
})

describe("the body read from Node's IncomingMessage", () => {
  /** A real HTTP server that reads each request's body with `nodeBodySource` and reports it. */
  async function withServer(
    limit: number,
    run: (port: number, outcomes: Promise<unknown>[]) => Promise<void>,
  ): Promise<void> {
    const outcomes: Promise<unknown>[] = []
    const server = createServer((incoming: IncomingMessage, outgoing) => {
      const outcome = nodeBodySource(incoming)(limit).then(
        (bytes) => (bytes === undefined ? 'too large' : new TextDecoder().decode(bytes)),
        (error: Error) => `failed: ${error.message}`,
      )
      outcomes.push(outcome)
      void outcome.then(() => outgoing.end('done'))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      await run((server.address() as AddressInfo).port, outcomes)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }

  it('reads a body in several chunks, and stops buffering past the limit', async () => {
    await withServer(16, async (port, outcomes) => {
      const url = `http://127.0.0.1:${port}/`
      const chunked = (parts: string[]) =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (const part of parts) controller.enqueue(new TextEncoder().encode(part))
            controller.close()
          },
        })
      const send = (parts: string[]) =>
        fetch(url, { method: 'POST', body: chunked(parts), duplex: 'half' } as RequestInit)
      await (await send(['{"a":', '1}'])).text()
      await (await send(['x'.repeat(10), 'y'.repeat(10)])).text()
      expect(await Promise.all(outcomes)).toEqual(['{"a":1}', 'too large'])
    })
  })

  it('fails, without a crash, when the client goes away in the middle of the body', async () => {
    await withServer(1024, async (port, outcomes) => {
      const socket = connect(port, '127.0.0.1')
      await new Promise((resolve) => socket.once('connect', resolve))
      socket.write('POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{"a":')
      for (let i = 0; i < 200 && outcomes.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      socket.destroy()
      // Node reports the abort as an error ('aborted') or a close before the end.
      expect(await outcomes[0]).toMatch(/^failed: (aborted|the request was aborted)$/)
    })
  })

  it('is refused by readJsonBody as malformed when the read fails (400, not 500)', async () => {
    const post = (body: string) => new Request('http://127.0.0.1/mcp', { method: 'POST', body })
    const failing = () => Promise.reject(new Error('reset'))
    await expect(readJsonBody(post('{}'), 1024, { body: failing })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_BODY',
    })
    await expect(
      readJsonBody(post('{}'), 4, { body: async () => undefined }),
    ).rejects.toMatchObject({
      code: 'ERR_BODY_TOO_LARGE',
    })
  })
})

describe("the headers read from Node's IncomingMessage", () => {
  it('read like Headers: case-insensitive, repeated values joined (never only the first)', async () => {
    const seen: Array<[string | null, string | null, string | null, [string, string][]]> = []
    const server = createServer((incoming, outgoing) => {
      const headers = nodeHeaders(incoming)
      seen.push([
        headers.get('Authorization'),
        headers.get('dpop'),
        headers.get('x-absent'),
        [...headers.entries()],
      ])
      outgoing.end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
      await new Promise((resolve) => socket.once('connect', resolve))
      socket.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: DPoP first\r\n' +
          'authorization: DPoP second\r\nDPoP: proof\r\n\r\n',
      )
      await new Promise((resolve) => socket.once('data', resolve))
      socket.destroy()
      // Node's own `incoming.headers` would keep only "DPoP first": a second token would be
      // ignored instead of making the request malformed.
      expect(seen).toEqual([
        [
          'DPoP first, DPoP second',
          'proof',
          null,
          [
            ['authorization', 'DPoP first, DPoP second'],
            ['dpop', 'proof'],
            ['host', '127.0.0.1'],
          ],
        ],
      ])
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
