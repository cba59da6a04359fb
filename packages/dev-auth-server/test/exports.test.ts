/**
 * The public surface of `@callproof/dev-auth-server`: exactly these runtime exports. A new export
 * must be added here on purpose (and documented); an internal that leaks into the barrel fails
 * this test.
 */
import { describe, expect, it } from 'vitest'
import * as barrel from '../src/index.js'

describe('@callproof/dev-auth-server exports', () => {
  it('exports exactly the public names', () => {
    expect(Object.keys(barrel).sort()).toEqual([
      'ACCESS_TOKEN_TYPE',
      'ACR_MFA',
      'ACR_PASSWORD',
      'ACR_VALUES',
      'DEV_CLIENT_ID',
      'DEV_MFA_CODE',
      'DEV_REDIRECT_URI',
      'DEV_USERS',
      'DevInteractionError',
      'JWT_BEARER_GRANT',
      'MCP_TOOL_CALL',
      'TOKEN_EXCHANGE_GRANT',
      'argumentsDigest',
      'createDevAuthServer',
      'devInteraction',
      'startDevAuthServer',
    ])
  })
})
