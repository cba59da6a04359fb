/**
 * The second table of `npm run bench`: the server alone. Requests are prepared — for callproof,
 * each with its own DPoP proof bound to its body, signed by the callproof client — before the
 * timed window, then sent with plain `fetch`, so that the client's signing is not counted and
 * both servers are driven by exactly the same sender.
 *
 * Two servers: the MCP SDK's idiomatic stateful server without authentication (what a user would
 * pick instead; ./stateful.ts) and callproof with its memory stores and caller-bound sessions.
 */
import { calculateJwkThumbprint } from 'jose'
import type { JWK } from 'jose'
import { createProofFetch, generateProofKeyPair } from '@callproof/client'
import type { TokenSet } from '@callproof/client'
import type { BenchIssuer } from './callers.js'

/** One request, ready to send: everything is fixed, nothing is signed while timed. */
export interface Prepared {
  readonly headers: Record<string, string>
  readonly body: string
}

/** A caller with an open session, able to prepare calls. */
export interface PreparedCaller {
  prepare(count: number): Promise<Prepared[]>
}

const PROTOCOL_VERSION = '2025-11-25'
const BASE_HEADERS = {
  accept: 'application/json, text/event-stream',
  'content-type': 'application/json',
  'mcp-protocol-version': PROTOCOL_VERSION,
}
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'bench', version: '0.1.0' },
  },
})

let nextId = 1
const callBody = (tool: { name: string; arguments: Record<string, unknown> }) =>
  JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: tool })

/** Opens a session; `send` adds whatever credentials the server needs. */
async function openSession(
  url: string,
  send: (init: { headers: Record<string, string>; body: string }) => Promise<Response>,
): Promise<string> {
  const response = await send({ headers: { ...BASE_HEADERS }, body: INITIALIZE })
  const sessionId = response.headers.get('mcp-session-id')
  await response.body?.cancel()
  if (!response.ok || sessionId === null) {
    throw new Error(`initialize at ${url} answered ${response.status} without a session`)
  }
  return sessionId
}

/** A caller of the SDK's own server: no credentials at all. */
export async function plainCaller(
  url: string,
  tool: { name: string; arguments: Record<string, unknown> },
): Promise<PreparedCaller> {
  const sessionId = await openSession(url, (init) => fetch(url, { method: 'POST', ...init }))
  return {
    async prepare(count) {
      return Array.from({ length: count }, () => ({
        headers: { ...BASE_HEADERS, 'mcp-session-id': sessionId },
        body: callBody(tool),
      }))
    },
  }
}

/**
 * A callproof caller: its own non-extractable ES256 key and a token bound to it, every request
 * signed by the callproof client's proof fetch (captured instead of sent).
 */
export async function callproofCaller(
  url: string,
  issuer: string,
  bench: BenchIssuer,
  index: number,
  tool: { name: string; arguments: Record<string, unknown> },
): Promise<PreparedCaller> {
  const keyPair = await generateProofKeyPair('ES256')
  const jkt = await calculateJwkThumbprint(
    (await crypto.subtle.exportKey('jwk', keyPair.publicKey)) as JWK,
  )
  const tokens: TokenSet = {
    accessToken: await bench.mint(issuer, url, `bench-presigned-${index}`, jkt),
    tokenType: 'dpop',
    issuer,
    resource: url,
    scopes: ['drive:read', 'drive:write'],
  }
  // (This server asks for no nonces, so the live and the captured signers need not share any.)
  const signer = { keyPair }
  const live = createProofFetch(signer, () => tokens)
  const sessionId = await openSession(url, (init) => live(url, { method: 'POST', ...init }))

  let captured: Prepared | undefined
  const capture = createProofFetch(
    {
      ...signer,
      fetch: async (_input, init) => {
        captured = {
          headers: Object.fromEntries(new Headers(init?.headers).entries()),
          body: String(init?.body),
        }
        return new Response(null, { status: 204 })
      },
    },
    () => tokens,
  )
  return {
    async prepare(count) {
      const prepared: Prepared[] = []
      for (let i = 0; i < count; i++) {
        await capture(url, {
          method: 'POST',
          headers: { ...BASE_HEADERS, 'mcp-session-id': sessionId },
          body: callBody(tool),
        })
        prepared.push(captured!)
      }
      return prepared
    },
  }
}

/**
 * Sends `requests` to `url` with `concurrency` in flight; returns each call's latency in ms.
 * Every answer is read and checked: a refused or failed call stops the benchmark.
 */
export async function sendPrepared(
  url: string,
  requests: readonly Prepared[],
  concurrency: number,
  label: string,
): Promise<{ ms: number; latencies: number[] }> {
  let next = 0
  const latencies: number[] = []
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const request = requests[next++]!
        const s = performance.now()
        const response = await fetch(url, { method: 'POST', ...request })
        const text = await response.text()
        latencies.push(performance.now() - s)
        if (
          response.status !== 200 ||
          text.includes('"isError":true') ||
          text.includes('"error"')
        ) {
          throw new Error(`${label}: a prepared call got ${response.status}: ${text.slice(0, 300)}`)
        }
      }
    }),
  )
  return { ms: performance.now() - t0, latencies }
}
