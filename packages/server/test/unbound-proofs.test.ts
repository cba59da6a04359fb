/**
 * Standard RFC 9449 clients (issue 12, item 2): the MCP SDK v2 client with its own DPoP support
 * (`DpopSession` + `withDpop`, which sign proofs without callproof's `mcp` claim) against a real
 * callproof server, a real SDK server behind it and real tokens from a local issuer. A primitive
 * whose policy says `binding: 'optional'` accepts such proofs; everything else refuses them with
 * ERR_BINDING_REQUIRED, and every other proof check still applies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import {
  Client,
  DpopSession,
  StreamableHTTPClientTransport,
  withDpop,
} from '@modelcontextprotocol/client'
import { callerOf, createCallproof, createToolRegistry } from '../src/index.js'
import type { AuditEvent } from '../src/index.js'
import { startIssuer } from './helpers/issuer.js'
import type { TestIssuer } from './helpers/issuer.js'
import { clientKey } from './helpers/issuer.js'
import { createProof } from '@callproof/core'
import { ACCEPT, provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

let issuer: TestIssuer
beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => {
  await issuer.close()
})

interface World {
  run: Running
  resource: string
  events: AuditEvent[]
}

async function world(): Promise<World> {
  const tools = createToolRegistry({ name: 'unbound', version: '0.0.0' })
  tools.register(
    'echo',
    {
      inputSchema: { text: z.string() },
      policy: { scopes: ['drive:read'], binding: 'optional' },
    },
    ({ text }, extra) => ({ content: [{ type: 'text', text: `${callerOf(extra).sub}: ${text}` }] }),
  )
  tools.register(
    'delete_file',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ({ path }) => ({ content: [{ type: 'text', text: `deleted ${path}` }] }),
  )
  tools.register('bob_only', { policy: { callers: { subjects: ['bob'] } } }, () => ({
    content: [{ type: 'text', text: 'hi bob' }],
  }))
  tools.resource(
    'readme',
    'docs://readme',
    { policy: { scopes: ['drive:read'], binding: 'optional' } },
    () => ({ contents: [{ uri: 'docs://readme', text: 'hello' }] }),
  )
  const events: AuditEvent[] = []
  let resource = ''
  const run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools,
      audit: { write: (event: AuditEvent) => void events.push(event) },
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  return { run, resource, events }
}

/** The SDK v2 client, DPoP by the SDK itself, with a token bound to the SDK's own key. */
async function sdkClient(w: World): Promise<Client> {
  const session = await DpopSession.create()
  const token = await issuer.mint({ aud: w.resource, cnf: { jkt: session.thumbprint } })
  const transport = new StreamableHTTPClientTransport(new URL(w.resource), {
    fetch: withDpop(session, () => token)(fetch),
  })
  const client = new Client({ name: 'standard-dpop', version: '0.0.0' })
  await client.connect(transport)
  return client
}

describe('standard DPoP clients (proofs without the mcp claim)', () => {
  it('the SDK v2 DPoP client calls a tool and reads a resource that accept unbound proofs', async () => {
    const w = await world()
    try {
      const client = await sdkClient(w)
      const listed = await client.listTools()
      const echo = listed.tools.find((t) => t.name === 'echo')
      expect(echo?._meta?.['callproof/policy']).toMatchObject({ binding: 'optional' })
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
      expect(result.content).toEqual([{ type: 'text', text: 'alice: hi' }])
      const read = await client.readResource({ uri: 'docs://readme' })
      expect(read.contents).toEqual([{ uri: 'docs://readme', text: 'hello' }])
      await client.close()
      // The audit shows the unbound call like any other allowed call.
      expect(w.events.some((e) => e.tool === 'echo' && e.decision === 'allowed')).toBe(true)
    } finally {
      await w.run.close()
    }
  })

  it('refuses the same client on a tool that requires the binding, with ERR_BINDING_REQUIRED', async () => {
    const w = await world()
    try {
      const client = await sdkClient(w)
      const refused = await client
        .callTool({ name: 'delete_file', arguments: { path: 'a.txt' } })
        .then(
          () => undefined,
          (error: unknown) => error,
        )
      expect(refused).toBeInstanceOf(Error)
      // What the SDK surfaces to its user says what is missing.
      expect((refused as Error).message).toMatch(/ERR_BINDING_REQUIRED/)
      expect((refused as Error).message).toMatch(/requires a call-bound proof/)
      await client.close()
      const event = w.events.find((e) => e.tool === 'delete_file')
      expect(event).toMatchObject({ decision: 'refused', reason: 'ERR_BINDING_REQUIRED' })
    } finally {
      await w.run.close()
    }
  })

  it('answers the refusal with 401 invalid_dpop_proof, the distinct code and what to do', async () => {
    const w = await world()
    try {
      const key = await clientKey()
      const token = await issuer.mint({ aud: w.resource, cnf: { jkt: key.jkt } })
      // A standard proof: htm, htu, ath, jti, iat and nothing else.
      const bare = async (message: unknown): Promise<RequestInit> => ({
        method: 'POST',
        headers: {
          accept: ACCEPT,
          'content-type': 'application/json',
          'mcp-protocol-version': '2025-06-18',
          authorization: `DPoP ${token}`,
          dpop: await createProof(key.keyPair, {
            htm: 'POST',
            htu: w.resource,
            accessToken: token,
          }),
        },
        body: JSON.stringify(message),
      })
      const response = await fetch(w.resource, await bare(toolCall('delete_file', { path: 'a' })))
      expect(response.status).toBe(401)
      const body = (await response.json()) as Record<string, string>
      expect(body).toMatchObject({ error: 'invalid_dpop_proof', code: 'ERR_BINDING_REQUIRED' })
      expect(body.error_description).toMatch(/tool delete_file requires a call-bound proof/)
      expect(response.headers.get('www-authenticate')).toMatch(/error="invalid_dpop_proof"/)
      // The same proof shape is accepted where the policy allows it.
      const ok = await fetch(w.resource, await bare(toolCall('echo', { text: 'x' })))
      expect(ok.status).toBe(200)
      // A proof whose mcp claim is present but names another call is still a mismatch.
      const wrong = await fetch(
        w.resource,
        await provenRequest(w.resource, {
          token,
          key,
          message: toolCall('echo', { text: 'x' }),
          proofMessage: toolCall('delete_file', { path: 'a' }),
        }),
      )
      expect(((await wrong.json()) as { code: string }).code).toBe('ERR_BINDING_MISMATCH')
      // An unknown tool and a tool whose callers exclude alice answer alike, as for bound
      // proofs: the unbound refusal must not tell which tools exist.
      for (const name of ['no_such_tool', 'bob_only']) {
        const denied = await fetch(w.resource, await bare(toolCall(name)))
        expect(denied.status).toBe(403)
        expect(((await denied.json()) as { code: string }).code).toBe('ERR_TOOL_DENIED')
      }
      // An answer to a server request is never accepted unbound.
      const answer = await fetch(w.resource, await bare({ jsonrpc: '2.0', id: 7, result: {} }))
      expect(((await answer.json()) as { code: string }).code).toBe('ERR_BINDING_REQUIRED')
      // Unbound is not single-use-free: the very same unbound proof is refused the second time.
      const init = await bare(toolCall('echo', { text: 'y' }))
      expect((await fetch(w.resource, init)).status).toBe(200)
      const again = await fetch(w.resource, init)
      expect(((await again.json()) as { code: string }).code).toBe('ERR_REPLAY')
    } finally {
      await w.run.close()
    }
  })
})
