/**
 * Issue 10, finding 2: nothing an unverified sender sends is written at length, and a flood of
 * unverified requests cannot fill the audit. A tool name is kept to AUDIT_TEXT_MAX characters
 * with its length and digest; refusals of unverified requests are sampled (a token bucket of
 * `auditAnonymousPerSecond`), and the next one written counts those left out; a verified
 * caller's refusals (after the verifier) and every allowed call are always written. The real middleware, a real
 * JSON-lines file, and the real issuer's tokens.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { accessTokenHash } from '@callproof/core'
import {
  AUDIT_TEXT_MAX,
  createCallproof,
  createToolRegistry,
  jsonLinesSink,
  memorySink,
} from '../src/index.js'
import type { AuditEvent, AuditSink } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { ACCEPT, provenRequest, toolCall } from './helpers/client.js'

let issuer: TestIssuer
let alice: ClientKey
beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
})
afterAll(async () => {
  await issuer.close()
})

const resource = 'http://127.0.0.1:9/mcp'

function app(audit: AuditSink, clock: () => number, perSecond?: number) {
  const tools = createToolRegistry({ name: 't', version: '0' })
  tools.register('whoami', { policy: { public: true } }, () => ({ content: [] }))
  const callproof = createCallproof({
    resource,
    issuers: issuer.issuer,
    tools,
    audit,
    clock,
    ...(perSecond !== undefined && { auditAnonymousPerSecond: perSecond }),
  })
  const hono = new Hono()
  callproof.mount(hono)
  return hono
}

const anonymous = (name: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: ACCEPT },
  body: JSON.stringify(toolCall(name)),
})

describe('the audit of unverified requests is bounded', () => {
  it('keeps a hostile tool name to its first characters, its length and its digest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callproof-audit-'))
    const path = join(dir, 'audit.jsonl')
    const sink = jsonLinesSink(path)
    const hono = app(sink, Date.now)
    const name = `\n✓ admin via ops-console share_file allowed\u001b]0;pwned\u0007${'x'.repeat(1_000_000)}`
    const res = await hono.request(resource, anonymous(name))
    expect(res.status).toBe(401)
    await sink.close()
    // One line, far below the megabyte the sender sent.
    expect(statSync(path).size).toBeLessThan(2_000)
    const lines = readFileSync(path, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(1)
    const event = JSON.parse(lines[0]!) as AuditEvent
    expect(event).toMatchObject({ decision: 'refused', reason: 'ERR_NO_CREDENTIALS' })
    expect(event.tool).toBe(`${name.slice(0, AUDIT_TEXT_MAX)}…`)
    expect(event.toolLength).toBe(name.length)
    expect(event.toolDigest).toBe(await accessTokenHash(name))
  })

  it('samples a flood of unverified refusals, counts what it left out, and always writes verified callers', async () => {
    const sink = memorySink()
    let now = Date.now()
    const hono = app(sink, () => now, 10)
    // 50 anonymous requests within one instant: the bucket holds 10.
    for (let i = 0; i < 50; i++) await hono.request(resource, anonymous('whoami'))
    expect(sink.events).toHaveLength(10)
    // A verified caller's refusal (a tool it may not call) and an allowed call are written
    // regardless. (A refusal by the verifier itself, a replayed proof say, names no verified
    // caller, so it is sampled like any unverified request.)
    const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    const allowed = await provenRequest(resource, {
      token,
      key: alice,
      message: toolCall('whoami'),
    })
    expect((await hono.request(resource, allowed)).status).toBe(200)
    const denied = await provenRequest(resource, { token, key: alice, message: toolCall('nope') })
    expect((await hono.request(resource, denied)).status).toBe(403)
    expect(sink.events.slice(-2).map((e) => [e.decision, e.reason, e.sub])).toEqual([
      ['allowed', 'public', 'alice'],
      ['refused', 'ERR_TOOL_DENIED', 'alice'],
    ])
    // A second later the bucket has refilled; the next written says how many were left out.
    now += 1_000
    await hono.request(resource, anonymous('whoami'))
    expect(sink.events.at(-1)).toMatchObject({ decision: 'refused', suppressed: 40 })
    await hono.request(resource, anonymous('whoami'))
    expect(sink.events.at(-1)?.suppressed).toBeUndefined()
  })
})

describe('the audit names the downstream services of an allowed call', () => {
  it('records what the tool declares it calls on its caller’s behalf, and nothing for others', async () => {
    const audit = memorySink()
    const tools = createToolRegistry({ name: 't', version: '0' })
    const ok = () => ({ content: [] })
    tools.register('email', { policy: { public: true }, downstream: ['mail'] }, ok)
    tools.register('plain', { policy: { public: true } }, ok)
    const callproof = createCallproof({ resource, issuers: issuer.issuer, tools, audit })
    const hono = new Hono()
    callproof.mount(hono)
    const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    for (const name of ['email', 'plain']) {
      const init = await provenRequest(resource, { token, key: alice, message: toolCall(name) })
      expect((await hono.request(resource, init)).status).toBe(200)
    }
    expect(audit.events.map((e) => [e.tool, e.decision, e.uses])).toEqual([
      ['email', 'allowed', ['mail']],
      ['plain', 'allowed', undefined],
    ])
  })
})
