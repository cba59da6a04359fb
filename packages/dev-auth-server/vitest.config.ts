import { defineProject } from 'vitest/config'
import { sourceConditions } from '../../vitest.shared.js'

export default defineProject({
  ...sourceConditions,
  test: {
    name: '@callproof/dev-auth-server',
    include: ['test/**/*.test.ts'],
    // Real Chromium and real HTTP: give them the root config's time.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
