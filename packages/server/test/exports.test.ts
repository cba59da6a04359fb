/**
 * The public surface of `@callproof/server`, `@callproof/server/v2` and `@callproof/server/redis`: exactly these runtime
 * exports. A new export must be added here on purpose (and documented); an internal that leaks
 * into a barrel (the body reader, session ids, the SDK seam, the pipeline's parts) fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as server from '../src/index.js'
import * as redis from '../src/redis/index.js'
import * as v2 from '../src/v2.js'

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

  it('exports the very same names from /v2, all but createCallproof the same values', () => {
    expect(Object.keys(v2).sort()).toEqual(Object.keys(server).sort())
    for (const name of Object.keys(server)) {
      if (name === 'createCallproof') expect(v2.createCallproof).not.toBe(server.createCallproof)
      else expect(v2[name as keyof typeof v2], name).toBe(server[name as keyof typeof server])
    }
  })

  it('exports exactly the Redis stores from /redis', () => {
    expect(Object.keys(redis).sort()).toEqual(['createRedisGrantStore', 'createRedisStores'])
  })
})
