// The README's commands as a newcomer types them: the demo's JSON line piped into a JSON parser,
// and `npx callproof …` right after `npm run demo` (this checkout's CLI, never a registry package).
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')

/** Runs `command` through sh in the repository; resolves with its exit code and output. */
function sh(command) {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe("the README's demo --json line", () => {
  it('prints only JSON on stdout, as the README starts it, and links npx callproof', async () => {
    // The README pipes it into jq: everything before the pipe is what a reader runs.
    const line = /^(npm run [^\n|]*demo -- --json) \| jq \.$/m.exec(readme)
    expect(line, 'README shows `… demo -- --json | jq .`').not.toBeNull()
    // As on a fresh clone, where `npm ci` ran before the CLI was built and linked nothing.
    const bin = join(root, 'node_modules', '.bin', 'callproof')
    rmSync(bin, { force: true })
    const r = await sh(line[1])
    expect(r.code, r.stderr).toBe(0)
    const table = JSON.parse(r.stdout)
    expect(table).toMatchObject({ mode: 'callproof', ok: true })
    expect(table.rows.length).toBeGreaterThan(5)

    // The README's `npx callproof …` lines now run this checkout's CLI; --no: never the registry.
    expect(existsSync(bin)).toBe(true)
    const help = await sh('npx --no -- callproof --help')
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toContain('Usage: callproof <command>')
  })
})
