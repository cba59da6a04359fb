import { defineProject } from 'vitest/config'

// The repository's own commands, run as a newcomer runs them: `npm test`'s checks, the README's
// demo line, the linked `callproof` bin.
export default defineProject({
  test: {
    name: 'scripts',
    include: ['test/**/*.test.mjs'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
