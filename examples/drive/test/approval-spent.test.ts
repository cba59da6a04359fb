/**
 * Issue 10, finding 6: a one-time approval is spent, and an `allowed` event written, only for a
 * call that runs. Everything the MCP transport would refuse (an `Accept` without both media
 * types, another `Content-Type`, an unknown protocol version) is refused before the approval is
 * consumed, and a `tools/call` sent as a notification (no `id`, which the SDK answers 202 and
 * never runs) is refused outright. Against the real drive over HTTP; each case ends with the
 * correct call succeeding with the very same approval.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memorySink } from '@callproof/server'
import type { AuditEvent } from '@callproof/server'
import { startFixture, uniquePath } from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { toolCall, toolText } from './support/mcp.js'
import type { SendOptions } from './support/mcp.js'
import { argsDigest } from './support/proof.js'

let fx: Fixture
const audit = memorySink()
beforeAll(async () => {
  fx = await startFixture({ audit })
})
afterAll(async () => {
  await fx?.close()
})

const eventOf = (requestId: string | null): AuditEvent | undefined =>
  audit.events.find((e) => e.requestId === requestId)

/** A share_file call that the transport (or JSON-RPC) would not run, then the right one. */
async function expectNotSpent(
  send: SendOptions & { notification?: boolean },
  status: number,
  code: string,
): Promise<void> {
  const path = uniquePath('spent')
  await fx.write('alice', path, 'plan')
  const c = await fx.caller()
  await c.connect()
  const args = { path, with: 'bob' }
  const approval = await fx.token(c.key, {
    authorizationDetails: [
      {
        type: 'mcp_tool_call',
        resource: fx.resource,
        tool: 'share_file',
        args: await argsDigest(args),
      },
    ],
  })
  const message = toolCall('share_file', args)
  if (send.notification === true) delete message['id']
  const refused = await c.send(message, { ...send, token: approval })
  expect(refused.status, refused.text).toBe(status)
  expect(JSON.parse(refused.text)).toMatchObject({ code })
  expect(eventOf(refused.headers.get('x-request-id'))).toMatchObject({
    decision: 'refused',
    reason: code,
  })
  expect((await fx.file('alice', path))?.sharedWith).toEqual([])

  // The approval is still there for the call the user approved.
  const ok = await c.callTool('share_file', args, { token: approval })
  toolText(ok)
  expect(eventOf(ok.headers.get('x-request-id'))).toMatchObject({ decision: 'allowed' })
  expect((await fx.file('alice', path))?.sharedWith).toEqual(['bob'])
}

describe('a one-time approval is spent only by a call that runs', () => {
  it('Accept: application/json alone → 406, approval kept', async () => {
    await expectNotSpent({ headers: { accept: 'application/json' } }, 406, 'ERR_NOT_ACCEPTABLE')
  })

  it('Content-Type text/plain → 415, approval kept', async () => {
    await expectNotSpent(
      { headers: { 'content-type': 'text/plain' } },
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    )
  })

  it('an unknown MCP-Protocol-Version → 400, approval kept', async () => {
    await expectNotSpent(
      { headers: { 'mcp-protocol-version': '1999-01-01' } },
      400,
      'ERR_UNSUPPORTED_PROTOCOL_VERSION',
    )
  })

  it('tools/call without an id (a notification, which runs nothing) → 400, approval kept', async () => {
    // Bound as core binds a notification (method only), so that only the missing id is wrong.
    await expectNotSpent(
      { notification: true, proofInput: { mcp: { method: 'tools/call' } } },
      400,
      'ERR_MALFORMED_BODY',
    )
  })
})
