/**
 * The public surface of `@callproof/core`: exactly these runtime exports. A new export must be
 * added here on purpose (and documented); an internal that leaks into the barrel fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as core from '../src/index.js'

describe('@callproof/core exports', () => {
  it('exports exactly the public names', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'ApprovalRequiredError',
        'CallproofError',
        'DEFAULT_CLOCK_SKEW_SECONDS',
        'InsufficientScopeError',
        'InsufficientUserAuthenticationError',
        'KeyCache',
        'MemoryReplayStore',
        'PROOF_ALGORITHMS',
        'QuotaExceededError',
        'TOKEN_ALGORITHMS',
        'UseNonceError',
        'accessTokenHash',
        'argsDigest',
        'assertValidPolicy',
        'bindingFor',
        'bindingShape',
        'bindingsEqual',
        'canEverBeGranted',
        'createNonceSource',
        'createProof',
        'createVerifier',
        'evaluatePolicy',
        'isAllowedNow',
        'isLoopbackHost',
        'isVerifiedCall',
        'jwkThumbprint',
        'normalizeHtu',
        'parseWwwAuthenticate',
        'toHttpAnswer',
        'toResponse',
        'verifyAccessToken',
        'verifyProof',
        'version',
        'webCryptoProofSigning',
        'webCryptoProofVerification',
      ].sort(),
    )
  })

  it('keeps the verifier internals out of the barrel', () => {
    expect(core).not.toHaveProperty('verifyProofWith')
    expect(core).not.toHaveProperty('LruCache')
    expect(core).not.toHaveProperty('checkHtu')
  })
})
