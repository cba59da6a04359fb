// `npm test` on a machine without the system programs the tests need: one line naming what to
// install, a non-zero exit, nothing installed, no stack trace. And the lookup every test that
// starts Chromium or redis-server uses.
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { findChromium, findRedisServer } from '../system.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Runs `node scripts/test.mjs` with `env` added; resolves with its exit code and output. */
function npmTest(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/test.mjs'], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // Were the check gone, the whole suite would start: stop it, the test has failed anyway.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const NOWHERE = '/nonexistent/callproof-test'

describe('npm test without redis-server or Chromium', () => {
  it('prints one line naming what to install on Debian/Ubuntu and macOS, and exits 1', async () => {
    const r = await npmTest({ CHROMIUM_PATH: `${NOWHERE}/chromium`, REDIS_SERVER_PATH: NOWHERE })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^callproof: the tests need redis-server and chromium, not found/)
    expect(lines[0]).toContain('`sudo apt-get install redis-server chromium`')
    expect(lines[0]).toContain('`brew install redis`')
    expect(lines[0]).toContain('CHROMIUM_PATH=')
  })

  it('names only what is missing', async () => {
    const r = await npmTest({ REDIS_SERVER_PATH: NOWHERE })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toEqual([
      'callproof: the tests need redis-server, not found (REDIS_SERVER_PATH names no executable file): on Debian/Ubuntu `sudo apt-get install redis-server`; on macOS `brew install redis`',
    ])
  })
})

describe('finding Chromium and redis-server', () => {
  const saved = { ...process.env }
  afterEach(() => {
    process.env = { ...saved }
  })

  it('CHROMIUM_PATH wins when it names an executable, and names nothing when it does not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'callproof-chromium-'))
    const fake = join(dir, 'my chromium')
    writeFileSync(fake, '#!/bin/sh\n')
    chmodSync(fake, 0o755)
    process.env.CHROMIUM_PATH = fake
    expect(findChromium()).toBe(fake)
    // A file that is there but not executable is no Chromium.
    chmodSync(fake, 0o644)
    expect(findChromium()).toBeUndefined()
  })

  it('redis-server is looked up on PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'callproof-redis-bin-'))
    const fake = join(dir, 'redis-server')
    writeFileSync(fake, '#!/bin/sh\n')
    chmodSync(fake, 0o755)
    delete process.env.REDIS_SERVER_PATH
    process.env.PATH = `${dir}:${saved.PATH ?? ''}`
    expect(findRedisServer()).toBe(fake)
  })
})
