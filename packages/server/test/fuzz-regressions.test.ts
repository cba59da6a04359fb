/**
 * Regression cases the fuzzers led to that are not single requests (those live in
 * test/fuzz-corpus/), and the checks that keep the fuzz oracle honest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memorySink } from '../src/index.js'
import { createDriveApp } from '../../../examples/drive/src/index.js'
import { startIssuer } from '../../../examples/drive/test/support/issuer.js'
import type { TestIssuer } from '../../../examples/drive/test/support/issuer.js'
import { expectNothingRan, startFuzzDrive } from './support/fuzz-drive.js'
import type { FuzzDrive } from './support/fuzz-drive.js'

let fx: FuzzDrive
beforeAll(async () => {
  fx = await startFuzzDrive()
})
afterAll(() => fx.close())

describe('the fuzz oracle', () => {
  it('sees a tool run (storage spy and audit) and fails a "refuse" case that ran', async () => {
    const message = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'write_file', arguments: { path: 'oracle/ran.txt', content: 'x' } },
    }
    const outcome = await fx.send({
      headers: await fx.honestHeaders(message),
      body: JSON.stringify(message),
    })
    expect(outcome.answer.status).toBe(200)
    expect(outcome.ops).toEqual([{ op: 'write', sub: 'alice', path: 'oracle/ran.txt' }])
    expect(outcome.allowed).toHaveLength(1)
    expect(() => expectNothingRan(outcome, 'honest')).toThrow()
  })

  it('sees an allowed call that touches no file (whoami) through the audit log', async () => {
    const message = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami' } }
    const outcome = await fx.send({
      headers: await fx.honestHeaders(message),
      body: JSON.stringify(message),
    })
    expect(outcome.ops).toEqual([])
    expect(() => expectNothingRan(outcome, 'whoami')).toThrow()
  })
})

describe('replay is keyed by the proof, not by its spelling', () => {
  it('a used proof re-sent with its signature spelled differently (same bytes) is refused', async () => {
    const message = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami' } }
    const headers = await fx.honestHeaders(message)
    const first = await fx.send({ headers, body: JSON.stringify(message) })
    expect(first.answer.status).toBe(200)
    // 64 signature bytes are 86 base64url characters: the last one carries 4 unused bits, so
    // several characters decode to the same signature.
    const proof = headers.dpop!
    const last = proof.at(-1)!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const base = alphabet.indexOf(last) & ~0b1111
    const twin = alphabet[base + ((alphabet.indexOf(last) + 1) & 0b1111)]!
    const respelled = proof.slice(0, -1) + twin
    const sig = (p: string) => Buffer.from(p.split('.')[2]!, 'base64url')
    expect(respelled).not.toBe(proof)
    expect(sig(respelled).equals(sig(proof))).toBe(true)
    const again = await fx.send({
      headers: { ...headers, dpop: respelled },
      body: JSON.stringify(message),
    })
    expectNothingRan(again, 'respelled proof')
    expect(again.answer.status).toBe(401)
  })
})

describe('fixed: arguments are no longer canonicalised before any credential check', () => {
  let issuer: TestIssuer
  beforeAll(async () => {
    issuer = await startIssuer()
  })
  afterAll(() => issuer.close())

  /**
   * Regression (found by fuzzing, fixed): the middleware used to compute the call binding —
   * RFC 8785 canonicalisation and SHA-256 of `params.arguments` — before the verifier, for every
   * request, with or without credentials, undoing core's rule that the binding starts only once
   * the token is valid ("so an anonymous caller cannot make us hash large bodies"). Measured then:
   * an anonymous 0.9 MiB body of 60 000 argument members cost ~75 ms of CPU per request, ~25× an
   * anonymous body of the same size whose bytes are outside `arguments`. Now only a shape check
   * (`bindingShape`) runs before authentication, and the verifier computes the digest once.
   */
  it('an anonymous request is refused without its arguments being digested', async () => {
    const resource = 'http://127.0.0.1:9/mcp'
    const audit = memorySink()
    const app = createDriveApp({ issuer: issuer.url, resource, audit })
    const args = Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i]))
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'whoami', arguments: args },
    })
    const res = await app.request(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    expect(res.status).toBe(401)
    const refusal = audit.events.at(-1)!
    expect(refusal.decision).toBe('refused')
    // The digest of the arguments is in the refusal's audit event: it was computed for a caller
    // who presented no credentials at all.
    expect(refusal.argsDigest).toBeUndefined()
  })
})
