import { decodeJwt } from 'jose'
import { describe, expect, it } from 'vitest'
import { generateProofKeyPair, readChallenge, sendWithProof } from '../src/index.js'
import { DpopNonces } from '../src/fetch.js'
import { startFake } from './support/fake.js'

const challenge = (status: number, header: string) =>
  readChallenge(new Response(null, { status, headers: { 'www-authenticate': header } }))

describe('readChallenge', () => {
  it('reads each challenge kind', () => {
    expect(challenge(401, 'DPoP resource_metadata="https://a/x", algs="ES256"')).toEqual({
      kind: 'unauthorized',
      resourceMetadata: 'https://a/x',
      algs: 'ES256',
    })
    expect(challenge(401, 'DPoP error="invalid_token", error_description="expired"')).toMatchObject(
      {
        kind: 'invalid_token',
      },
    )
    expect(
      challenge(403, 'DPoP error="insufficient_scope", scope="drive:read drive:write"'),
    ).toEqual({ kind: 'insufficient_scope', scopes: ['drive:read', 'drive:write'] })
    expect(
      challenge(
        401,
        'DPoP error="insufficient_user_authentication", acr_values="urn:callproof:acr:mfa", max_age=300',
      ),
    ).toEqual({ kind: 'step_up', acrValues: ['urn:callproof:acr:mfa'], maxAge: 300 })
    const details = [{ type: 'mcp_tool_call', resource: 'https://a/mcp', tool: 't', args: 'x' }]
    const b64 = Buffer.from(JSON.stringify(details)).toString('base64url')
    expect(
      challenge(
        403,
        `DPoP error="insufficient_authorization_details", authorization_details="${b64}"`,
      ),
    ).toEqual({ kind: 'approval', authorizationDetails: details })
    expect(challenge(403, 'DPoP error="access_denied"')).toMatchObject({
      kind: 'final',
      error: 'access_denied',
    })
    expect(challenge(403, '')).toMatchObject({ kind: 'final' })
    expect(readChallenge(new Response(null, { status: 200 }))).toBeUndefined()
  })
})

describe('proof claims per HTTP method', () => {
  it('GET and DELETE proofs carry no mcp claim; POST proofs bind the body', async () => {
    const f = await startFake({ '/mcp': () => ({ status: 202 }) })
    const signer = { keyPair: await generateProofKeyPair(), nonces: new DpopNonces() }
    const token = {
      accessToken: 't',
      tokenType: 'dpop',
      scopes: [],
      issuer: 'http://127.0.0.1:1',
      resource: `${f.origin}/mcp`,
    }
    await sendWithProof(signer, `${f.origin}/mcp`, { method: 'GET' }, token)
    await sendWithProof(signer, `${f.origin}/mcp`, { method: 'DELETE' }, token)
    await sendWithProof(
      signer,
      `${f.origin}/mcp?session=1#x`,
      {
        method: 'POST',
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      },
      token,
    )
    const claims = f.requests.map((r) => decodeJwt(String(r.headers.dpop)))
    expect(claims[0]).toMatchObject({ htm: 'GET', htu: `${f.origin}/mcp` })
    expect(claims[0]?.mcp).toBeUndefined()
    expect(claims[1]?.htm).toBe('DELETE')
    expect(claims[1]?.mcp).toBeUndefined()
    // htu never carries the query or fragment (RFC 9449 §4.2).
    expect(claims[2]).toMatchObject({
      htm: 'POST',
      htu: `${f.origin}/mcp`,
      mcp: { method: 'notifications/initialized' },
    })
    expect(typeof claims[2]?.ath).toBe('string')
    await f.close()
  })

  it('a Bearer token is sent as Bearer, without a proof', async () => {
    const f = await startFake({ '/mcp': () => ({ status: 202 }) })
    const signer = { keyPair: await generateProofKeyPair(), nonces: new DpopNonces() }
    await sendWithProof(
      signer,
      `${f.origin}/mcp`,
      { method: 'GET' },
      {
        accessToken: 'b',
        tokenType: 'bearer',
        scopes: [],
        issuer: 'http://127.0.0.1:1',
        resource: `${f.origin}/mcp`,
      },
    )
    expect(f.requests[0]?.headers.authorization).toBe('Bearer b')
    expect(f.requests[0]?.headers.dpop).toBeUndefined()
    await f.close()
  })
})
