// These tests pin the baseline's flaws: if one of them starts failing, the baseline no longer
// shows what `callproof demo --insecure` says it shows.
import { createServer } from 'node:net'
import { connect } from '@callproof/client'
import { devInteraction, startDevAuthServer } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInsecureDrive } from '../src/index.js'
import type { InsecureDrive } from '../src/index.js'

let auth: Awaited<ReturnType<typeof startDevAuthServer>>
let drive: InsecureDrive
let port: number

async function rpc(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(drive.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  })
  return {
    response,
    json:
      response.status === 202 ? undefined : ((await response.json()) as Record<string, unknown>),
  }
}

beforeAll(async () => {
  // The authorization server must know the resource before the drive starts: probe a free port.
  // Another test worker may take it before the drive binds it; the drive then refuses to start
  // (EADDRINUSE) and both start again on another port.
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    auth = await startDevAuthServer({
      resources: [
        {
          uri: `http://127.0.0.1:${port}/mcp`,
          scopes: ['drive:read', 'drive:write', 'drive:share'],
        },
      ],
      logger: { warn: () => undefined },
    })
    try {
      drive = await startInsecureDrive({ issuer: auth.issuer, port })
      return
    } catch (error) {
      await auth.close()
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
})

/** A port that was free a moment ago (listen on 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
}

afterAll(async () => {
  await drive?.close()
  await auth?.close()
})

describe('insecure baseline (deliberately naive)', () => {
  it('asks for a login until someone has logged in', async () => {
    const { response } = await rpc({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('resource_metadata=')
    expect(drive.cachedSubject()).toBeUndefined()
  })

  it('after alice logs in once, serves a caller without any credentials as alice', async () => {
    const alice = await connect(drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      // The baseline's metadata offers no DPoP: callproof's client needs the opt-in to use it.
      requireBoundTokens: false,
    })
    await alice.callTool({ name: 'list_files', arguments: {} })
    expect(drive.cachedSubject()).toBe('alice')

    const init = await rpc({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'x', version: '0' },
      },
    })
    expect(init.response.status).toBe(200)
    const session = init.response.headers.get('mcp-session-id') ?? ''
    const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }
    await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers)
    const who = await rpc(
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
      headers,
    )
    const text = (who.json?.result as { content: { text: string }[] }).content[0]?.text ?? ''
    expect(JSON.parse(text)).toMatchObject({ sub: 'alice' })

    // …and deletes without MFA: no per-tool checks.
    const del = await rpc(
      {
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'delete_file', arguments: { path: 'README.md' } },
      },
      headers,
    )
    expect(JSON.stringify(del.json)).toContain('deleted README.md')
    expect(drive.files('alice').has('README.md')).toBe(false)
    await alice.close()
  })

  it('listens on loopback only', async () => {
    await expect(
      startInsecureDrive({ issuer: auth.issuer, hostname: '0.0.0.0' as '127.0.0.1' }),
    ).rejects.toThrow(/loopback only/)
  })
})
