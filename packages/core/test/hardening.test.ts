/**
 * Checks that another check stands behind: each test here fails when its check alone is removed,
 * because the input is built so that the other layer lets it through.
 */
import { describe, expect, it } from 'vitest'
import { CallproofError, createProof, verifyAccessToken, verifyProof } from '../src/index.js'
import type { VerifierOptions } from '../src/index.js'
import {
  ISSUER,
  NOW,
  RESOURCE,
  clientKeys,
  clock,
  issuer,
  proofFor,
  thumbprintOf,
  toolCall,
  verifierWith,
} from './helpers.js'

const as = await issuer()
const alice = await clientKeys()
const aliceJkt = await thumbprintOf(alice)

async function refusal(promise: Promise<unknown>): Promise<CallproofError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  return err as CallproofError
}

const verifier = (extra: Partial<VerifierOptions> = {}) => verifierWith(as.keys, extra).verifier

function post(token: string, dpop: string, message: unknown) {
  const headers = new Headers({ authorization: `DPoP ${token}`, dpop })
  return { method: 'POST', url: RESOURCE, headers, message }
}

describe('proof htu with userinfo', () => {
  const options = { htm: 'POST', htu: RESOURCE, clock }
  it.each([
    'https://evil@drive.example.com/mcp',
    'https://evil:pw@drive.example.com/mcp',
    'https://@drive.example.com/mcp',
    ' https://evil@drive.example.com/mcp',
    'ht\ttps://evil@drive.example.com/mcp',
    'https:\\\\evil@drive.example.com/mcp',
  ])('refuses %j although it normalizes to the resource', async (htu) => {
    // Without the check these normalize (WHATWG URL drops the userinfo) to RESOURCE and pass.
    const proof = await createProof(alice, { htm: 'POST', htu, iat: NOW })
    const err = await refusal(verifyProof(proof, options))
    expect(err.code).toBe('ERR_INVALID_PROOF')
    expect(err.message).toMatch(/userinfo/)
  })

  it('still accepts the resource itself and an @ in the path', async () => {
    const ok = await createProof(alice, { htm: 'POST', htu: RESOURCE, iat: NOW })
    await expect(verifyProof(ok, options)).resolves.toMatchObject({ jkt: aliceJkt })
    const atInPath = 'https://drive.example.com/m@cp'
    const proof = await createProof(alice, { htm: 'POST', htu: atInPath, iat: NOW })
    await expect(verifyProof(proof, { ...options, htu: atInPath })).resolves.toBeDefined()
  })

  it('is refused through the verifier (the configured resource never has userinfo)', async () => {
    const token = await as.token(aliceJkt)
    const message = toolCall('whoami')
    const proof = await proofFor(alice, token, message, {
      htu: 'https://evil@drive.example.com/mcp',
    })
    const err = await refusal(verifier().verify(post(token, proof, message)))
    expect(err.code).toBe('ERR_INVALID_PROOF')
  })
})

describe('access token auth_time in the future', () => {
  it('is refused with invalid_token beyond the clock skew, accepted within it', async () => {
    const options = { issuers: [ISSUER], keys: as.keys, audience: RESOURCE, clock }
    // A login "in the future" would pass every max_age check (now − auth_time < 0).
    const future = await as.token(aliceJkt, { auth_time: NOW + 3600 })
    const err = await refusal(verifyAccessToken(future, options))
    expect(err.code).toBe('ERR_INVALID_TOKEN')
    expect(err.message).toMatch(/auth_time is in the future/)
    const justBeyond = await as.token(aliceJkt, { auth_time: NOW + 6 })
    expect((await refusal(verifyAccessToken(justBeyond, options))).code).toBe('ERR_INVALID_TOKEN')
    const withinSkew = await as.token(aliceJkt, { auth_time: NOW + 5 })
    await expect(verifyAccessToken(withinSkew, options)).resolves.toBeDefined()
    const past = await as.token(aliceJkt, { auth_time: NOW - 100 })
    await expect(verifyAccessToken(past, options)).resolves.toBeDefined()
  })
})

describe('the DPoP header count (verifier)', () => {
  it('names "exactly one DPoP header" for two proofs joined by a comma', async () => {
    const token = await as.token(aliceJkt)
    const message = toolCall('whoami')
    const one = await proofFor(alice, token, message)
    const two = await proofFor(alice, token, message)
    for (const joined of [`${one}, ${two}`, `${one},${two}`, `${one},`]) {
      const err = await refusal(verifier().verify(post(token, joined, message)))
      expect(err.code).toBe('ERR_INVALID_PROOF')
      // The JWS parser would refuse these too, but with another reason: this is the count check.
      expect(err.message).toMatch(/exactly one DPoP header/)
    }
  })
})

describe('the proof alg allowlist, apart from the jwk/alg fit', () => {
  it('refuses a valid ES256 proof (fitting P-256 jwk) when only EdDSA is configured', async () => {
    const token = await as.token(aliceJkt)
    const message = toolCall('whoami')
    const proof = await proofFor(alice, token, message)
    // The same proof is accepted with the default allowlist: only the allowlist refuses it.
    await expect(verifier().verify(post(token, proof, message))).resolves.toBeDefined()
    const again = await proofFor(alice, token, message)
    const err = await refusal(
      verifier({ algorithms: ['EdDSA'] }).verify(post(token, again, message)),
    )
    expect(err.code).toBe('ERR_INVALID_PROOF')
    expect(err.message).toMatch(/ES256/)
    const direct = await refusal(
      verifyProof(await createProof(alice, { htm: 'POST', htu: RESOURCE, iat: NOW }), {
        htm: 'POST',
        htu: RESOURCE,
        clock,
        algorithms: ['EdDSA', 'Ed25519'],
      }),
    )
    expect(direct.code).toBe('ERR_INVALID_PROOF')
  })
})

describe('the token iss allowlist, apart from the key resolver', () => {
  it('refuses an untrusted iss even when the resolver hands out a valid key for any issuer', async () => {
    const other = 'https://other-as.example.com'
    const token = await as.token(aliceJkt, { iss: other })
    // A resolver that trusts everything: the signature verifies, so only the iss check refuses.
    const keys = as.keys
    const err = await refusal(
      verifyAccessToken(token, { issuers: [ISSUER], keys, audience: RESOURCE, clock }),
    )
    expect(err.code).toBe('ERR_INVALID_TOKEN')
    expect(err.message).toMatch(/issuer .* is not trusted/)
    // The same token with its issuer trusted is valid: the signature and every other claim pass.
    await expect(
      verifyAccessToken(token, { issuers: [ISSUER, other], keys, audience: RESOURCE, clock }),
    ).resolves.toBeDefined()
  })
})
