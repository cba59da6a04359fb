/**
 * The public surface of `@callproof/server` and `@callproof/server/redis`: exactly these runtime
 * exports. A new export must be added here on purpose (and documented); an internal that leaks
 * into a barrel (the body reader, session ids, the SDK seam, the pipeline's parts) fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as server from '../src/index.js'
import * as redis from '../src/redis/index.js'

describe('@callproof/server exports', () => {
  it('exports exactly the public names', () => {
    expect(Object.keys(server).sort()).toEqual([
      'AUDIT_TEXT_MAX',
      'DEFAULT_BODY_LIMIT',
      'DownstreamCredentialError',
      'MemoryGrantStore',
      'MemorySessionStore',
      'POLICY_META_KEY',
      'ToolRegistry',
      'adaptiveProofVerification',
      'assertSecureUrl',
      'callerOf',
      'checkOrigin',
      'createCallproof',
      'createDownstreamCredentials',
      'createIntrospector',
      'createIssuerKeys',
      'createThirdPartyAuthorizations',
      'createToolRegistry',
      'defaultOriginPolicy',
      'discoverIssuer',
      'discoveryUrls',
      'jsonLinesSink',
      'memorySink',
      'metadataPathFor',
      'metadataResponse',
      'metadataUrlFor',
      'nodeProofVerification',
      'protectedResourceMetadata',
    ])
  })

  it('exports exactly the Redis stores from /redis', () => {
    expect(Object.keys(redis).sort()).toEqual(['createRedisGrantStore', 'createRedisStores'])
  })
})
