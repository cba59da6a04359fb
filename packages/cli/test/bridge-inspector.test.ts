// MCP Inspector's CLI (`mcp-inspector --cli`, 2.12.0), software nobody here wrote, launching
// `callproof bridge` as its stdio server and listing and calling the drive's tools, delete_file's
// MFA step-up included, through the development authorization server.
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'
import { bridgeCommandLine, packageDir } from './support/bridge.js'

const inspector = join(packageDir, '..', '..', 'node_modules', '.bin', 'mcp-inspector')
const dir = mkdtempSync(join(tmpdir(), 'callproof-inspector-'))

/** Runs one Inspector CLI method against the bridge; resolves with its exit code and output. */
function inspect(
  bridgeArgs: string[],
  method: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { command, args } = bridgeCommandLine(bridgeArgs)
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [inspector, '--cli', '--cwd', packageDir, command, ...args, ...method],
      {
        // Its catalog file goes to a temporary directory, not the user's home.
        env: { ...process.env, MCP_CATALOG_PATH: join(dir, 'mcp.json'), NO_COLOR: '1' },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe('MCP Inspector CLI through callproof bridge', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ drive: 'callproof' })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('lists the tools, calls delete_file after an MFA step-up', async () => {
    const bridge = [stack.url, '--user', 'alice', '--state', dir]
    const listed = await inspect(bridge, ['--method', 'tools/list'])
    expect(listed.code).toBe(0)
    const { tools } = JSON.parse(listed.stdout) as { tools: { name: string }[] }
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['whoami', 'delete_file']))

    const deleted = await inspect(bridge, [
      '--method',
      'tools/call',
      '--tool-name',
      'delete_file',
      '--tool-arg',
      'path=notes/todo.txt',
    ])
    expect(deleted.code).toBe(0)
    const result = JSON.parse(deleted.stdout) as { content: { text: string }[]; isError?: boolean }
    expect(result.isError).not.toBe(true)
    expect(result.content[0]?.text).toBe('deleted notes/todo.txt')
    // The bridge's own lines reach the Inspector's stderr: the step-up happened on the way.
    expect(deleted.stderr).toContain('401 insufficient_user_authentication')
    // Two Inspector processes, each starting the bridge from the sources: seconds each, slower
    // when the machine is busy.
  }, 120_000)
})
