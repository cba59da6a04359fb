// The README's client on a machine without a browser (SSH, containers, CI, WSL without an
// opener): the default systemBrowserInteraction() prints the authorization URL on stderr and
// waits; the "user" opens it elsewhere. Here that user signs in on the real development
// authorization server's pages (devInteraction) and follows the redirect to the child's loopback
// listener, as a browser on the same machine (or through `ssh -L`) would.
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

interface Run {
  code: number | null
  stdout: string
  stderr: string
  /** The authorization URLs the child printed, in order. */
  urls: string[]
}

/**
 * Runs test/fixtures/readme-client.ts with `env` (PATH and DISPLAY as the test sets them) and
 * plays alice for every URL it prints on stderr. Bounded: the child is killed after 40 s.
 */
function runHeadless(
  args: string[],
  env: NodeJS.ProcessEnv,
  fixture = 'test/fixtures/readme-client.ts',
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@callproof/source', '--import', 'tsx', fixture, ...args],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const pages = devInteraction({ user: 'alice' })
    const urls: string[] = []
    let stdout = ''
    let stderr = ''
    let failure: unknown
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      // Each printed URL once, as a person would copy it from the terminal.
      for (const [, href = ''] of stderr.matchAll(/^ {2}(http:\/\/\S+)$/gm)) {
        if (urls.includes(href)) continue
        urls.push(href)
        void pages
          .authorize(new URL(href), { reason: 'authorize' })
          .then(async (callback) => (await fetch(callback)).body?.cancel())
          .catch((error: unknown) => {
            failure = error
            child.kill('SIGKILL')
          })
      }
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      if (failure !== undefined) reject(failure as Error)
      else resolve({ code, stdout, stderr, urls })
    })
  })
}

/** PATH with node's own directory removed too: nothing but an empty directory. */
const noOpener = mkdtempSync(join(tmpdir(), 'callproof-no-opener-'))

/** What must never reach the user's terminal: the opener's noise, a stack trace. */
function expectQuiet(stderr: string): void {
  expect(stderr).not.toMatch(/not found:|xdg-open:/)
  expect(stderr).not.toMatch(/^\s+at /m)
}

describe('the README client without a browser', () => {
  it('no opener on PATH: prints the URL, waits, and completes sign-in and step-up', async () => {
    const { DISPLAY: _display, WAYLAND_DISPLAY: _wayland, ...env } = process.env
    // A display is announced, so xdg-open is really looked for — and is not there.
    const run = await runHeadless(
      [world.drive.url, 'delete_file', JSON.stringify({ path: 'reports/q3.csv' })],
      { ...env, PATH: noOpener, DISPLAY: ':99' },
    )
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout).isError).not.toBe(true)
    // The sign-in, then the MFA step-up for delete_file: two URLs, both for the real issuer.
    expect(run.urls).toHaveLength(2)
    for (const href of run.urls) expect(new URL(href).origin).toBe(world.issuer)
    expect(run.stderr).toContain('No browser could be opened (xdg-open not found)')
    expect(run.stderr).toMatch(/Waiting for the redirect to 127\.0\.0\.1:\d+/)
    expectQuiet(run.stderr)
  }, 60_000)

  it('the same client on SDK v2 (one import changed): sign-in and step-up', async () => {
    const { DISPLAY: _display, WAYLAND_DISPLAY: _wayland, ...env } = process.env
    const run = await runHeadless(
      [world.drive.url, 'delete_file', JSON.stringify({ path: 'notes/todo.txt' })],
      { ...env, PATH: noOpener, DISPLAY: ':99' },
      'test/fixtures/readme-client-v2.ts',
    )
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout).isError).not.toBe(true)
    expect(run.urls).toHaveLength(2)
    for (const href of run.urls) expect(new URL(href).origin).toBe(world.issuer)
    expectQuiet(run.stderr)
  }, 60_000)

  it('an opener that finds no browser: its noise is not shown, the URL is', async () => {
    // A stand-in for xdg-open on a machine without any browser (the real one here would find the
    // test machine's Chromium): it prints what xdg-open prints then, on both streams, and fails.
    const dir = mkdtempSync(join(tmpdir(), 'callproof-xdg-open-'))
    const opener = join(dir, 'xdg-open')
    const noise = ['www-browser', 'links2', 'elinks', 'links', 'lynx', 'w3m']
      .map((b) => `echo "/usr/bin/xdg-open: 882: ${b}: not found"`)
      .join('\n')
    writeFileSync(opener, `#!/bin/sh\n${noise}\n${noise} >&2\nexit 3\n`)
    chmodSync(opener, 0o755)
    const run = await runHeadless([world.drive.url, 'whoami'], {
      ...process.env,
      PATH: `${dir}:/usr/bin:/bin`,
      DISPLAY: ':99',
    })
    expect(run.code, run.stderr).toBe(0)
    expect(run.urls).toHaveLength(1)
    expect(run.stderr).toContain('No browser could be opened (xdg-open exited with code 3)')
    expectQuiet(run.stderr)
    expect(run.stdout).not.toContain('not found')
  }, 60_000)

  it('no display (SSH, containers, CI): the opener is not even tried', async () => {
    const {
      DISPLAY: _display,
      WAYLAND_DISPLAY: _wayland,
      WSL_DISTRO_NAME: _wsl,
      ...env
    } = process.env
    const run = await runHeadless([world.drive.url, 'whoami'], env)
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(JSON.parse(run.stdout).content[0].text).sub).toBe('alice')
    expect(run.urls).toHaveLength(1)
    expect(run.stderr).toContain(
      'No browser could be opened (no display: DISPLAY and WAYLAND_DISPLAY are not set)',
    )
    expectQuiet(run.stderr)
  }, 60_000)
})
