import { argsDigest, verifyAccessToken } from '@callproof/core'
import { createRemoteJWKSet } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACR_MFA, MCP_TOOL_CALL, argumentsDigest, devInteraction } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { OTHER_RESOURCE, RESOURCE, TestClient, startServer } from './helpers.js'

// The tokens this server issues are what @callproof/core's verifier expects, and the digest the
// approval page checks is the digest the proofs carry.

let server: DevAuthServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})

describe('with @callproof/core', () => {
  it('the argument digest is the same function', async () => {
    for (const args of [
      {},
      undefined,
      { path: 'notes.txt', with: 'bob' },
      { b: [1, 2, { z: null, a: 'é' }], a: 1e21, c: true },
    ]) {
      expect(argumentsDigest(args)).toBe(await argsDigest(args))
    }
  })

  it('verifyAccessToken accepts the tokens for their resource and refuses them for another', async () => {
    const client = await TestClient.create(server.issuer)
    const args = { path: 'notes.txt', with: 'bob' }
    const tokens = await client.login(devInteraction({ user: 'alice' }), {
      scope: 'drive:share',
      acr_values: ACR_MFA,
      authorization_details: JSON.stringify([
        {
          type: MCP_TOOL_CALL,
          resource: RESOURCE,
          tool: 'share_file',
          args: await argsDigest(args),
          arguments: args,
        },
      ]),
    })
    const keys = createRemoteJWKSet(new URL(client.as.jwks_uri!))
    const verified = await verifyAccessToken(tokens.access_token, {
      issuers: [server.issuer],
      keys,
      audience: RESOURCE,
    })
    expect(verified.claims.cnf.jkt).toBe(await client.jkt())
    expect(verified.claims.acr).toBe(ACR_MFA)
    expect(verified.scopes).toEqual(['drive:share'])
    expect(verified.claims.authorization_details).toEqual([
      { type: MCP_TOOL_CALL, resource: RESOURCE, tool: 'share_file', args: await argsDigest(args) },
    ])
    await expect(
      verifyAccessToken(tokens.access_token, {
        issuers: [server.issuer],
        keys,
        audience: OTHER_RESOURCE,
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' })
  })
})
