/**
 * The client bounds every response it reads (issue 10, finding 5): metadata (RFC 9728, RFC 8414),
 * registration and token responses from a hostile server on 127.0.0.1 that sends a huge body or
 * sends its headers and stalls. The huge body is generated as the client reads it (one 64 KiB
 * buffer written again and again under backpressure), so neither side allocates it.
 */
import { createServer } from 'node:http'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_RESPONSE_TIMEOUT_MS,
  MemoryTokenStore,
  clientCredentialsFlow,
  clientSecretBasic,
  discoverAuthorizationServer,
  discoverProtectedResource,
  generateProofKeyPair,
  guardedFetch,
  resolveClient,
} from '../src/index.js'
import { httpOptions, oauthContext } from '../src/oauth.js'
import type { UrlPolicy } from '../src/index.js'

const MiB = 1024 * 1024
/** What the hostile server would send in full: far more than any limit. */
const HUGE = 256 * MiB
const chunk = Buffer.alloc(64 * 1024, 0x20)

let origin: string
let sent = 0
const stalled = new Set<ServerResponse>()
const server = createServer((request, response) => {
  const path = request.url ?? ''
  // Drain request bodies (registration and token POSTs) before answering.
  request.resume()
  if (path.endsWith('/huge')) {
    // 201 for registration (RFC 7591 §3.2.1), 200 for everything else
    response.writeHead(path.startsWith('/register') ? 201 : 200, {
      'content-type': 'application/json',
    })
    response.write('{"resource":"')
    sent = 0
    const pump = () => {
      while (sent < HUGE && !response.destroyed) {
        sent += chunk.length
        if (!response.write(chunk)) return void response.once('drain', pump)
      }
      if (!response.destroyed) response.end('"}')
    }
    pump()
  } else if (path.endsWith('/declared')) {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': 400 * MiB })
    response.write('{')
    stalled.add(response)
  } else if (path.endsWith('/stall-body')) {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.write('{"resource":')
    stalled.add(response)
  } else if (path.endsWith('/stall-headers')) {
    stalled.add(response)
  } else {
    response.writeHead(404).end()
  }
})

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  for (const r of stalled) r.destroy()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const policy: UrlPolicy = { allowLoopbackHttp: true, responseTimeoutMs: 500 }

describe('response size limit', () => {
  it('has sane defaults', () => {
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBe(MiB)
    expect(DEFAULT_RESPONSE_TIMEOUT_MS).toBe(10_000)
  })

  it('stops reading a huge resource_metadata document at the limit', async () => {
    const before = process.memoryUsage().rss
    const error = await discoverProtectedResource(`${origin}/mcp`, `${origin}/prm/huge`, {
      urlPolicy: { allowLoopbackHttp: true },
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE' })
    expect((error as Error).message).toContain(`at most ${MiB} bytes`)
    // The client hung up: what the server got out is the limit plus socket buffers, not 256 MiB.
    expect(sent).toBeLessThan(64 * MiB)
    expect(process.memoryUsage().rss - before).toBeLessThan(128 * MiB)
  })

  it('refuses a declared Content-Length over the limit without reading the body', async () => {
    await expect(
      discoverProtectedResource(`${origin}/mcp`, `${origin}/prm/declared`, { urlPolicy: policy }),
    ).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
      message: expect.stringContaining(`${400 * MiB} bytes (Content-Length)`),
    })
  })

  it('applies a configured limit to authorization server metadata (RFC 8414)', async () => {
    await expect(
      discoverAuthorizationServer(`${origin}/huge`, {
        urlPolicy: { ...policy, maxResponseBytes: 4096 },
      }),
    ).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
      message: expect.stringContaining('at most 4096 bytes'),
    })
    expect(sent).toBeLessThan(64 * MiB)
  })

  it('bounds registration and token responses read by oauth4webapi', async () => {
    const as = {
      issuer: origin,
      registration_endpoint: `${origin}/register/huge`,
      token_endpoint: `${origin}/token/huge`,
    }
    await expect(
      resolveClient(as, undefined, {}, new MemoryTokenStore(), httpOptions(policy)),
    ).rejects.toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE' })
    const ctx = oauthContext(
      as,
      { client_id: 'c' },
      clientSecretBasic('s'),
      await generateProofKeyPair(),
      policy,
    )
    await expect(clientCredentialsFlow(ctx, { resource: `${origin}/mcp` })).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
    })
  })

  it('refuses a limit that is not a positive integer when the fetch is made', () => {
    expect(() => guardedFetch({ maxResponseBytes: 0 })).toThrow(/maxResponseBytes/)
    expect(() => guardedFetch({ responseTimeoutMs: Number.NaN })).toThrow(/responseTimeoutMs/)
  })
})

describe('response time limit', () => {
  it('gives up on metadata whose body stalls after the headers', async () => {
    await expect(
      discoverProtectedResource(`${origin}/mcp`, `${origin}/prm/stall-body`, { urlPolicy: policy }),
    ).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TIMEOUT',
      message: expect.stringContaining('within 500 ms'),
    })
  })

  it('gives up on a server that never sends its headers', async () => {
    await expect(
      discoverAuthorizationServer(`${origin}/stall-headers`, { urlPolicy: policy }),
    ).rejects.toMatchObject({ code: 'ERR_RESPONSE_TIMEOUT' })
  })

  it('gives up on a token response that stalls', async () => {
    const ctx = oauthContext(
      { issuer: origin, token_endpoint: `${origin}/token/stall-body` },
      { client_id: 'c' },
      clientSecretBasic('s'),
      await generateProofKeyPair(),
      policy,
    )
    await expect(clientCredentialsFlow(ctx, { resource: `${origin}/mcp` })).rejects.toMatchObject({
      code: 'ERR_RESPONSE_TIMEOUT',
    })
  })

  it('also when the fetch underneath ignores the abort signal', async () => {
    const deaf: typeof fetch = (input, init) => {
      const { signal: _ignored, ...rest } = init ?? {}
      return fetch(input, rest)
    }
    await expect(
      guardedFetch(policy, deaf)(`${origin}/stall-headers`).then((r) => r.text()),
    ).rejects.toMatchObject({ code: 'ERR_RESPONSE_TIMEOUT' })
    await expect(
      guardedFetch(policy, deaf)(`${origin}/x/stall-body`).then((r) => r.text()),
    ).rejects.toMatchObject({ code: 'ERR_RESPONSE_TIMEOUT' })
  })
})
