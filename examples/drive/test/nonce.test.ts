/**
 * A drive started with nonces on (`--nonce`, RFC 9449 §8 / docs/protocol.md §14): a proof without
 * the server's nonce, with a forged one, or with another server's one gets 401 use_dpop_nonce with
 * a fresh `DPoP-Nonce`, and nothing runs; the proof with the served nonce succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDrive } from '../src/index.js'
import { expectChallenge, startFixture, uniquePath } from './support/drive.js'
import type { Expected, Fixture } from './support/drive.js'
import { McpCaller, rpc, toolCall, toolText } from './support/mcp.js'
import { newCallerKey } from './support/proof.js'

let fx: Fixture
let otherNonce: string
beforeAll(async () => {
  fx = await startFixture({ nonce: true })
  // Another drive with its own (random) nonce secret, trusting the same issuer: its nonces are
  // well-formed and current, but not this drive's.
  const other = await startDrive({ port: 0, issuer: fx.issuer.url, nonce: true })
  try {
    const res = await fetch(other.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(rpc('tools/list')),
    })
    await res.text()
    otherNonce = res.headers.get('dpop-nonce') ?? ''
  } finally {
    await other.close()
  }
})
afterAll(async () => {
  await fx?.close()
})

const useNonce: Expected = { status: 401, error: 'use_dpop_nonce', code: 'ERR_USE_NONCE' }
const NONCE_CHARS = /^[\x21\x23-\x5B\x5D-\x7E]+$/

describe('server-provided nonces', () => {
  it('initialize without a nonce: 401 use_dpop_nonce with a DPoP-Nonce header, no session', async () => {
    const key = await newCallerKey()
    const c = new McpCaller({ url: fx.url, resource: fx.resource }, key, await fx.token(key))
    const answer = await c.send(
      rpc('initialize', {
        protocolVersion: c.protocolVersion,
        capabilities: {},
        clientInfo: { name: 't', version: '0' },
      }),
      { sessionId: null },
    )
    expectChallenge(fx, answer, useNonce)
    expect(answer.headers.get('dpop-nonce')).toMatch(NONCE_CHARS)
    expect(answer.headers.get('mcp-session-id')).toBeNull()
  })

  it('a missing, forged or foreign nonce is refused and nothing is written; the served one works', async () => {
    const c = await fx.caller()
    expect((await c.connect()).status).toBe(200)
    const served = c.nonce
    expect(served).toMatch(NONCE_CHARS)
    expect(otherNonce).toMatch(NONCE_CHARS)
    expect(otherNonce).not.toBe(served)
    const path = uniquePath('nonce')
    const forged = 'A'.repeat(served!.length)
    for (const nonce of [undefined, forged, otherNonce, `${served}x`]) {
      c.nonce = served
      const answer = await c.send(toolCall('write_file', { path, content: 'x' }), {
        proofInput: { nonce },
      })
      expectChallenge(fx, answer, useNonce)
      expect(answer.headers.get('dpop-nonce')).toMatch(NONCE_CHARS)
    }
    expect(await fx.file('alice', path)).toBeUndefined()
    c.nonce = served
    toolText(await c.send(toolCall('write_file', { path, content: 'with nonce' })))
    expect(await fx.read('alice', path)).toBe('with nonce')
  })

  it('the nonce does not replace the replay check: a proof with a valid nonce is still single-use', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('nonce-replay')
    const msg = toolCall('write_file', { path, content: 'once' })
    const proof = await c.proofFor('POST', msg)
    toolText(await c.send(msg, { proof }))
    const again = await c.send(msg, { proof })
    expectChallenge(fx, again, {
      status: 401,
      error: 'invalid_dpop_proof',
      code: 'ERR_REPLAY',
    })
  })
})
