import { defineConfig } from 'vitest/config'

// One vitest project per workspace; each project's own vitest.config.ts sets its timeouts
// (file-based projects do not inherit the root's test options). The drive's end-to-end suites
// run a second time with the drive on the MCP SDK v2 (`CALLPROOF_SDK=v2`, read by
// examples/drive/test/support/drive.ts), so that both SDK lines pass the same tests.
export default defineConfig({
  test: {
    projects: [
      'packages/*',
      'examples/*',
      'scripts',
      {
        extends: './examples/drive/vitest.config.ts',
        root: './examples/drive',
        test: { name: '@callproof/example-drive (sdk v2)', env: { CALLPROOF_SDK: 'v2' } },
      },
    ],
  },
})
