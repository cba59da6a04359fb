import { defineConfig } from 'vitest/config'

// One vitest project per workspace; each project's own vitest.config.ts sets its timeouts
// (file-based projects do not inherit the root's test options).
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'scripts'],
  },
})
