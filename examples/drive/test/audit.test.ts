/**
 * Audit events (issue 2): one per decision, allowed or refused, with the reason code, the tool,
 * the verified caller and the argument digest — never the token, the proof or the arguments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memorySink } from '@callproof/server'
import { startFixture, uniquePath } from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { toolCall, toolText } from './support/mcp.js'
import { argsDigest } from './support/proof.js'

const sink = memorySink()
let fx: Fixture
beforeAll(async () => {
  fx = await startFixture({ audit: sink })
})
afterAll(async () => {
  await fx?.close()
})

describe('audit events', () => {
  it('record allowed and refused calls with reason and digest, and never a secret', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('audit')
    const secret = 'the-launch-code-4711'
    const args = { path, content: secret }
    const msg = toolCall('write_file', args)
    const proof = await c.proofFor('POST', msg)
    const before = sink.events.length
    toolText(await c.send(msg, { proof }))
    expect((await c.send(msg, { proof })).status).toBe(401) // replay
    const reader = await fx.caller({ scope: 'drive:read' })
    await reader.connect()
    expect((await reader.send(toolCall('write_file', args))).status).toBe(403)

    const events = sink.events.slice(before)
    const digest = await argsDigest(args)
    const forCall = events.filter((e) => e.tool === 'write_file' && e.argsDigest === digest)
    const allowed = forCall.filter((e) => e.decision === 'allowed')
    expect(allowed).toHaveLength(1)
    expect(allowed[0]).toMatchObject({ sub: 'alice', jkt: c.key.jkt, method: 'tools/call' })
    expect(forCall.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['ERR_REPLAY', 'ERR_INSUFFICIENT_SCOPE']),
    )
    const scopeRefusal = forCall.find((e) => e.reason === 'ERR_INSUFFICIENT_SCOPE')
    expect(scopeRefusal).toMatchObject({ decision: 'refused', status: 403, jkt: reader.key.jkt })

    const everything = JSON.stringify(sink.events)
    for (const leak of [c.token, reader.token, proof, secret, path]) {
      expect(everything.includes(leak), `audit must not contain ${leak.slice(0, 20)}…`).toBe(false)
    }
  })
})
