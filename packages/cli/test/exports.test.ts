/**
 * The public surface of `@callproof/cli`: exactly these runtime exports. A new export must be added
 * here on purpose (and documented); an internal that leaks into the barrel fails this test.
 */
import { describe, expect, it } from 'vitest'
import * as barrel from '../src/index.js'

describe('@callproof/cli exports', () => {
  it('exports exactly the public names', () => {
    expect(Object.keys(barrel).sort()).toEqual([
      'CliError',
      'SAFE_TEXT_MAX',
      'SCAN_CHECKS',
      'UsageError',
      'VERSION',
      'formatAudit',
      'formatDemoTable',
      'formatInspection',
      'formatScanReport',
      'inspectJwt',
      'loginCaller',
      'main',
      'memoryIo',
      'processIo',
      'readAudit',
      'runDemo',
      'runScan',
      'safeJson',
      'safeText',
      'startAuthServer',
      'startStack',
      'tokenCaller',
    ])
  })
})
