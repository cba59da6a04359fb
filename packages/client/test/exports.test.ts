/**
 * The public surface of `@callproof/client`: exactly these runtime exports. A new export must be
 * added here on purpose (and documented); an internal that leaks into the barrel (the oauth4webapi
 * context, HTTP options, nonce memory) fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as client from '../src/index.js'

describe('@callproof/client exports', () => {
  it('exports exactly the public names', () => {
    expect(Object.keys(client).sort()).toEqual([
      'CallproofClientError',
      'CallproofSession',
      'ChallengeError',
      'DEFAULT_MAX_RESPONSE_BYTES',
      'DEFAULT_RESPONSE_TIMEOUT_MS',
      'FileKeyStore',
      'FileTokenStore',
      'MemoryKeyStore',
      'MemoryTokenStore',
      'assertAlgorithmSupported',
      'assertOpenableUrl',
      'assertSafeUrl',
      'authorizationCodeFlow',
      'authorizationServerMetadataUrls',
      'bindingOfBody',
      'clientAuthentication',
      'clientCredentialsFlow',
      'clientSecretBasic',
      'connect',
      'createCallproofFetch',
      'createChallengeFetch',
      'createProofFetch',
      'discoverAuthorizationServer',
      'discoverLegacyAuthorizationServer',
      'discoverProtectedResource',
      'enterpriseAuthorizationFlow',
      'generateProofKeyPair',
      'guardedFetch',
      'jwtBearerGrant',
      'loadOrCreateKeyPair',
      'nodeProofSigning',
      'privateKeyJwtAuthentication',
      'proofAlgorithms',
      'readChallenge',
      'refreshTokens',
      'resolveClient',
      'resourceCovers',
      'sendWithProof',
      'systemBrowserInteraction',
      'workloadIdentityFlow',
    ])
  })
})
