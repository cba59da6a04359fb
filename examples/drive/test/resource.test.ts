/**
 * `--resource`: several instances behind one load balancer share a public resource URI. Tokens'
 * `aud` and proofs' `htu` must name that URI, never the instance's own address; the metadata is
 * served at the instance's origin and names the public resource (DESIGN.md, examples/drive).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDrive } from '../src/index.js'
import { startIssuer } from './support/issuer.js'
import type { TestIssuer } from './support/issuer.js'
import { dpopChallenge } from './support/http.js'
import { McpCaller, toolCall, toolText } from './support/mcp.js'
import { newCallerKey } from './support/proof.js'

const PUBLIC = 'https://drive.example.com/mcp'
let issuer: TestIssuer
let drive: Awaited<ReturnType<typeof startDrive>>
beforeAll(async () => {
  issuer = await startIssuer()
  drive = await startDrive({ port: 0, issuer: issuer.url, resource: PUBLIC })
  issuer.resource = PUBLIC
})
afterAll(async () => {
  await drive?.close()
  await issuer?.close()
})

describe('a public resource URI', () => {
  it('the metadata at the instance names the public resource', async () => {
    expect(drive.resource).toBe(PUBLIC)
    const res = await fetch(`${drive.origin}/.well-known/oauth-protected-resource/mcp`)
    expect(res.status).toBe(200)
    expect(((await res.json()) as { resource: string }).resource).toBe(PUBLIC)
  })

  it('accepts aud and htu naming the public URI, refuses the instance address in either', async () => {
    const key = await newCallerKey()
    const good = new McpCaller(
      { url: drive.url, resource: PUBLIC },
      key,
      await issuer.mint({ jkt: key.jkt }),
    )
    const who = JSON.parse(toolText(await good.callTool('whoami'))) as { sub: string }
    expect(who.sub).toBe('alice')

    // htu = the instance URL the request really went to: not the resource → refused.
    const path = 'lb/htu.txt'
    const htuAnswer = await good.send(toolCall('write_file', { path, content: 'x' }), {
      proofInput: { htu: drive.url },
    })
    expect(htuAnswer.status).toBe(401)
    expect(dpopChallenge(htuAnswer)?.params.error).toBe('invalid_dpop_proof')

    // aud = the instance URL: a token for another resource → refused.
    const instanceToken = await issuer.mint({ jkt: key.jkt, aud: drive.url })
    const audAnswer = await good.send(toolCall('write_file', { path, content: 'x' }), {
      token: instanceToken,
    })
    expect(audAnswer.status).toBe(401)
    expect(dpopChallenge(audAnswer)?.params.error).toBe('invalid_token')
    expect(dpopChallenge(audAnswer)?.params.resource_metadata).toBe(
      'https://drive.example.com/.well-known/oauth-protected-resource/mcp',
    )

    const files = JSON.parse(toolText(await good.callTool('list_files', {}))) as { path: string }[]
    expect(files.map((f) => f.path)).not.toContain(path)
  })
})
