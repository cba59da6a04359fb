/**
 * A one-time approval must be remembered for as long as its token can still be accepted. The
 * token is accepted until `exp` + `clockSkewSeconds` (up to 300 s). The approval entry used to be
 * kept until `exp` + 60 s (core policy.ts `APPROVAL_SKEW_MS`), so with a tolerance above 60 s the
 * approval could be used a second time in between; it is now kept until `exp` + tolerance + 60 s.
 *
 * The server's clock (and the memory replay store's, which shares it) is moved forward with the
 * `clock` options instead of waiting a minute and a half.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { MemoryReplayStore, argsDigest, bindingFor, createProof } from '@callproof/core'
import { createCallproof, createToolRegistry } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { ACCEPT, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

const SKEW = 120

let issuer: TestIssuer
let alice: ClientKey
let run: Running
let resource = ''
let offsetMs = 0
let shares = 0
const clock = () => Date.now() + offsetMs

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  run = await listen((origin) => {
    resource = `${origin}/mcp`
    const tools = createToolRegistry({ name: 'approval-skew', version: '0.0.0' })
    tools.register(
      'share_file',
      { policy: { scopes: ['drive:share'], approval: 'per-call' } },
      () => {
        shares++
        return { content: [{ type: 'text', text: 'shared' }] }
      },
    )
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools,
      clockSkewSeconds: SKEW,
      replay: new MemoryReplayStore({ clock }),
      clock,
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
})
afterAll(async () => {
  await run.close()
  await issuer.close()
})

/** A call of share_file with a fresh proof whose iat is the server's current time. */
async function share(token: string, args: Record<string, unknown>): Promise<number> {
  const message = toolCall('share_file', args)
  const proof = await createProof(alice.keyPair, {
    htm: 'POST',
    htu: resource,
    accessToken: token,
    iat: Math.floor(clock() / 1000),
    mcp: await bindingFor(message),
  })
  const response = await fetch(resource, {
    method: 'POST',
    headers: {
      accept: ACCEPT,
      'content-type': 'application/json',
      'mcp-protocol-version': '2025-06-18',
      authorization: `DPoP ${token}`,
      dpop: proof,
    },
    body: JSON.stringify(message),
  })
  await response.arrayBuffer()
  return response.status
}

describe(`approvals under clockSkewSeconds ${SKEW}`, () => {
  it('an approval is refused the second time for as long as its token is accepted', async () => {
    const args = { path: 'report.txt', with: 'bob' }
    const exp = Math.floor(Date.now() / 1000) + 10
    const token = await issuer.mint({
      aud: resource,
      cnf: { jkt: alice.jkt },
      scope: 'drive:share',
      exp,
      authorization_details: [
        { type: 'mcp_tool_call', resource, tool: 'share_file', args: await argsDigest(args) },
      ],
    })
    offsetMs = 0
    expect(await share(token, args)).toBe(200)
    expect(await share(token, args)).toBe(403)
    // 90 s after exp: the token is still inside the 120 s tolerance, so the approval entry must
    // still be there (it was kept only until exp + 60 s before the fix).
    offsetMs = exp * 1000 + 90_000 - Date.now()
    expect(await share(token, args)).toBe(403)
    expect(shares).toBe(1)
  })
})
