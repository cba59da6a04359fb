/** verifyAccessToken: every refusal path (ERR_INVALID_TOKEN) and the algorithm allowlist. */
import { SignJWT, base64url } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import { describe, expect, it, vi } from 'vitest'
import { CallproofError, verifyAccessToken } from '../src/index.js'
import type { VerifyAccessTokenOptions } from '../src/index.js'
import { ISSUER, NOW, RESOURCE, clock, issuer } from './helpers.js'

const as = await issuer()
const options: VerifyAccessTokenOptions = {
  issuers: [ISSUER],
  keys: as.keys,
  audience: RESOURCE,
  clock,
}
const JKT = 'jkt-of-the-client-key'

async function refused(token: string | Promise<string>, reason: RegExp, opts = options) {
  const err = await verifyAccessToken(await token, opts).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  expect((err as CallproofError).code).toBe('ERR_INVALID_TOKEN')
  expect((err as CallproofError).message).toMatch(reason)
}

const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  sub: 'alice',
  aud: RESOURCE,
  client_id: 'client-1',
  jti: 't-1',
  iat: NOW - 10,
  exp: NOW + 300,
  scope: 'drive:read  drive:write',
  cnf: { jkt: JKT },
  ...extra,
})

describe('verifyAccessToken', () => {
  it('accepts a good token and splits its scopes', async () => {
    const verified = await verifyAccessToken(await as.mint(claims()), options)
    expect(verified.scopes).toEqual(['drive:read', 'drive:write'])
    expect(verified.claims).toMatchObject({
      sub: 'alice',
      client_id: 'client-1',
      cnf: { jkt: JKT },
    })
  })

  it('returns claims frozen all the way down (they are cached and shared between calls)', async () => {
    const verified = await verifyAccessToken(
      await as.mint(claims({ authorization_details: [{ type: 'mcp_tool_call', tool: 'x' }] })),
      options,
    )
    expect(() => {
      ;(verified.claims.cnf as { jkt: string }).jkt = 'attacker'
    }).toThrow(TypeError)
    expect(() => {
      ;(verified.claims.authorization_details![0] as unknown as { tool: string }).tool = 'y'
    }).toThrow(TypeError)
    expect(verified.claims.cnf.jkt).toBe(JKT)
  })

  it('accepts typ application/at+jwt and an aud array that contains the resource', async () => {
    await expect(
      verifyAccessToken(
        await as.mint(claims({ aud: ['https://other.example', RESOURCE] }), {
          typ: 'application/at+jwt',
        }),
        options,
      ),
    ).resolves.toBeDefined()
  })

  it('refuses a missing, oversized or malformed token', async () => {
    await refused('', /missing/)
    await refused('abc', /compact JWS/)
    await refused(`${'a'.repeat(17000)}.b.c`, /compact JWS/)
    await refused(`${base64url.encode('{x')}.e30.sig`, /not a JWT/)
  })

  it('refuses a token without typ unless allowMissingTyp, and any other typ always', async () => {
    const noTyp = await as.mint(claims(), { typ: undefined })
    await refused(noTyp, /no typ/)
    await expect(
      verifyAccessToken(noTyp, { ...options, allowMissingTyp: true }),
    ).resolves.toBeDefined()
    for (const typ of ['JWT', 'dpop+jwt', 'id_token+jwt']) {
      await refused(as.mint(claims(), { typ }), /typ/, { ...options, allowMissingTyp: true })
    }
  })

  it('refuses alg none and HMAC tokens, and algorithms outside a configured allowlist', async () => {
    const enc = (v: unknown) => base64url.encode(JSON.stringify(v))
    await refused(
      `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc(claims())}.`,
      /alg none is not allowed/,
    )
    const hs = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(new Uint8Array(32))
    await refused(hs, /alg HS256 is not allowed/)
    await refused(as.mint(claims()), /alg ES256 is not allowed/, {
      ...options,
      algorithms: ['RS256'],
    })
  })

  it('refuses to be configured with none or HMAC', async () => {
    for (const algorithms of [['HS256'], ['none'], [], ['ES256', 'HS512']]) {
      await expect(
        verifyAccessToken(await as.mint(claims()), { ...options, algorithms }),
      ).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTIONS',
      })
    }
  })

  it('refuses an untrusted issuer before resolving any key', async () => {
    const keys = vi.fn(as.keys) as unknown as JWTVerifyGetKey
    await refused(as.mint(claims({ iss: 'https://evil.example' })), /issuer .* is not trusted/, {
      ...options,
      keys,
    })
    expect(keys).not.toHaveBeenCalled()
  })

  it('refuses a token signed by another key', async () => {
    const other = await issuer()
    await refused(other.mint(claims()), /invalid/)
  })

  it('refuses the wrong audience', async () => {
    await refused(as.mint(claims({ aud: 'https://other.example/mcp' })), /invalid.*aud|aud/)
  })

  it('refuses expired, not yet valid and future-issued tokens, with tolerance', async () => {
    await refused(as.mint(claims({ exp: NOW - 6 })), /exp/)
    await expect(
      verifyAccessToken(await as.mint(claims({ exp: NOW - 4 })), options),
    ).resolves.toBeDefined()
    await refused(as.mint(claims({ exp: NOW - 1 })), /exp/, {
      ...options,
      clockToleranceSeconds: 0,
    })
    await refused(as.mint(claims({ nbf: NOW + 60 })), /nbf/)
    await refused(as.mint(claims({ iat: NOW + 60 })), /iat is in the future/)
  })

  it.each(['exp', 'iat', 'jti', 'sub', 'client_id'])(
    'refuses a token without %s',
    async (claim) => {
      await refused(as.mint(claims({ [claim]: undefined })), new RegExp(claim))
    },
  )

  it('refuses an empty client_id', async () => {
    await refused(as.mint(claims({ client_id: '' })), /client_id/)
  })

  it('refuses an unbound token (no cnf.jkt)', async () => {
    await refused(as.mint(claims({ cnf: undefined })), /not bound/)
    await refused(as.mint(claims({ cnf: { 'x5t#S256': 'abc' } })), /not bound/)
    await refused(as.mint(claims({ cnf: { jkt: '' } })), /not bound/)
  })

  it('refuses ill-typed scope, acr, auth_time and authorization_details', async () => {
    await refused(as.mint(claims({ scope: ['drive:read'] })), /scope/)
    await refused(as.mint(claims({ acr: 2 })), /acr/)
    await refused(as.mint(claims({ auth_time: 'yesterday' })), /auth_time/)
    await refused(
      as.mint(claims({ authorization_details: { type: 'mcp_tool_call' } })),
      /authorization_details/,
    )
  })
})
