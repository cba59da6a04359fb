/**
 * The public surface of `@callproof/client`: exactly these runtime exports. A new export must be
 * added here on purpose (and documented); an internal that leaks into the barrel (the oauth4webapi
 * context, HTTP options, nonce memory) fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as client from '../src/index.js'
import * as v2 from '../src/v2.js'

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

  it('exports the same names from @callproof/client/v2, with its own connect() for SDK v2', () => {
    expect(Object.keys(v2).sort()).toEqual(Object.keys(client).sort())
    expect(v2.connect).not.toBe(client.connect)
    expect(v2.createCallproofFetch).toBe(client.createCallproofFetch)
  })
})
