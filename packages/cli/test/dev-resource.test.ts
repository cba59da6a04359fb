// `callproof dev --resource`: the development authorization server for a team's own MCP server,
// the newcomer's path from the README's 20-line server to a first successful call.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { ACR_MFA } from '@callproof/dev-auth-server'
import { callerOf, createCallproof, createToolRegistry } from '@callproof/server'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { devCommand } from '../src/dev.js'
import type { DevAuthInfo } from '../src/dev.js'
import { main, memoryIo } from '../src/index.js'
import { freePort } from '../src/stack.js'
import { callproof, gone } from './support/process.js'

/**
 * A loopback HTTP server on a port the system picks, listening before its app exists: the
 * resource URI names the port, and the app names the resource. Taking the port by listening
 * (rather than probing a free one and binding it later) leaves no moment for another process to
 * take it.
 */
async function listening(): Promise<{ server: Server; origin: string; use(app: Hono): void }> {
  let app: Hono | undefined
  const server = serve({
    fetch: (request) => app?.fetch(request) ?? new Response('not ready', { status: 503 }),
    port: 0,
    hostname: '127.0.0.1',
  }) as Server
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const { port } = server.address() as AddressInfo
  return { server, origin: `http://127.0.0.1:${port}`, use: (next) => void (app = next) }
}

/** The README's server: one tool that needs `notes:write` and an MFA sign-in of at most 5 min. */
function notesApp(resource: string, issuer: string): Hono {
  const tools = createToolRegistry({ name: 'notes', version: '1.0.0' })
  tools.register(
    'write_note',
    {
      description: 'Write a note',
      policy: { scopes: ['notes:write'], acr: [ACR_MFA], maxAge: 300 },
    },
    (extra) => ({ content: [{ type: 'text', text: `${callerOf(extra).sub} wrote a note` }] }),
  )
  const app = new Hono()
  createCallproof({ resource, issuers: issuer, tools }).mount(app)
  return app
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('callproof dev --resource', () => {
  it('issues tokens for your own server: the executable, a real server, a real call with MFA step-up', async () => {
    const notes = await listening()
    cleanups.push(() => closeServer(notes.server))
    const resource = `${notes.origin}/mcp`
    // --auth-port 0: the authorization server takes a free port by listening on it, and the
    // issuer printed names it.
    const run = callproof([
      'dev',
      '--resource',
      resource,
      '--scopes',
      'notes:write',
      '--auth-port',
      '0',
      '--json',
    ])
    cleanups.push(() => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL')
    })
    const deadline = Date.now() + 15_000
    while (!run.out().includes('\n')) {
      // An unknown flag or a refused one ends the process; a hang ends at the deadline.
      expect(run.child.exitCode, run.err()).toBeNull()
      expect(Date.now()).toBeLessThan(deadline)
      await new Promise((r) => setTimeout(r, 50))
    }
    const info = JSON.parse(run.out().trim()) as DevAuthInfo
    expect(info).toEqual({
      issuer: expect.stringMatching(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/) as unknown,
      drive: 'none',
      resources: [
        { uri: resource, scopes: ['notes:write'], call: `callproof call ${resource} --user alice` },
      ],
      users: [
        { id: 'alice', password: 'alice-dev-password' },
        { id: 'bob', password: 'bob-dev-password' },
      ],
      mfaCode: '123456',
    })

    expect(info.issuer).not.toBe(notes.origin)
    notes.use(notesApp(resource, info.issuer))

    // The line `dev` printed, as printed: signs in as alice and lists the tools.
    const listing = memoryIo()
    const [, , ...listArgs] = (info.resources[0]?.call ?? '').split(' ')
    expect(await main(['call', ...listArgs], listing), listing.stderr.join('\n')).toBe(0)
    expect(listing.stdout.join('\n')).toMatch(/^write_note/m)

    // The tool needs notes:write and MFA: the token is for this resource, the step-up works.
    const call = memoryIo()
    expect(
      await main(['call', resource, 'write_note', '--user', 'alice'], call),
      call.stderr.join('\n'),
    ).toBe(0)
    expect(call.stdout.join('\n')).toContain('alice wrote a note')
    expect(call.stderr.join('\n')).toContain('401 insufficient_user_authentication')

    // A server the authorization server was not told about gets no token: the newcomer's
    // original failure, and what the calls above would have met had --resource been ignored.
    const other = await listening()
    cleanups.push(() => closeServer(other.server))
    const otherResource = `${other.origin}/mcp`
    other.use(notesApp(otherResource, info.issuer))
    const refused = memoryIo()
    expect(await main(['call', otherResource, 'write_note', '--user', 'alice'], refused)).toBe(1)
    expect(refused.stderr.join('\n')).toContain('invalid_target')

    run.child.kill('SIGINT')
    expect(await run.exited).toBe(0)
    expect(gone(run.child.pid ?? 0)).toBe(true)
    await expect(fetch(info.issuer)).rejects.toThrow()
  })

  it('pairs each --scopes with its --resource, and prints what a newcomer needs next', async () => {
    const a = 'http://127.0.0.1:3000/mcp'
    const b = 'https://notes.example.com/mcp'
    const json = memoryIo()
    const args = ['--resource', a, '--scopes', 'notes:read,notes:write', '--resource', b]
    expect(
      await devCommand([...args, '--scopes', 'x:read x:read', '--json'], json, Promise.resolve()),
    ).toBe(0)
    const info = JSON.parse(json.stdout.join('')) as DevAuthInfo
    expect(info.resources.map((r) => [r.uri, r.scopes])).toEqual([
      [a, ['notes:read', 'notes:write']],
      [b, ['x:read']],
    ])

    const text = memoryIo()
    expect(
      await devCommand(['--resource', a, '--scopes', 'notes:write'], text, Promise.resolve()),
    ).toBe(0)
    const out = text.stdout.join('\n')
    expect(out).toMatch(/issuer +http:\/\/127\.0\.0\.1:\d+/)
    expect(out).toContain(`issues tokens for     ${a}`)
    expect(out).toContain('drive example         not started')
    expect(out).toMatch(
      /createCallproof\(\{ resource: 'http:\/\/127\.0\.0\.1:3000\/mcp', issuers: 'http:\/\/127\.0\.0\.1:\d+', tools \}\)/,
    )
    expect(out).toContain('alice    password alice-dev-password')
    expect(out).toContain('bob      password bob-dev-password')
    expect(out).toContain('MFA code 123456')
    expect(out).toContain(`callproof call ${a} --user alice`)
    expect(out).toContain(`callproof call ${a} <tool> key=value --user alice`)
    // No drive: nothing of the drive's is offered.
    expect(out).not.toContain('delete_file')
  })

  it('normalises the resource URI the way the server does, so the names match', async () => {
    const io = memoryIo()
    expect(
      await devCommand(
        ['--resource', 'HTTP://LOCALHOST:3000', '--scopes', 'a', '--json'],
        io,
        Promise.resolve(),
      ),
    ).toBe(0)
    expect((JSON.parse(io.stdout.join('')) as DevAuthInfo).resources[0]?.uri).toBe(
      'http://localhost:3000/',
    )
  })

  it('takes --auth-port 0 as a free port, also for a resource without a port in its URI', async () => {
    const io = memoryIo()
    const argv = ['--resource', 'http://127.0.0.1/mcp', '--scopes', 'a', '--auth-port', '0']
    expect(await devCommand([...argv, '--json'], io, Promise.resolve()), io.stderr.join('\n')).toBe(
      0,
    )
    const { issuer } = JSON.parse(io.stdout.join('')) as DevAuthInfo
    expect(issuer).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/)
    expect(issuer).not.toBe('http://127.0.0.1:80')
  })

  it('starts the authorization server on --auth-port <n>, and the issuer names it', async () => {
    // A port probed free may be taken by another test worker before the server binds it: that
    // one failure (its own message) tries another port; anything else fails the test.
    for (let attempt = 1; ; attempt++) {
      const authPort = await freePort()
      const io = memoryIo()
      const argv = ['--resource', 'http://127.0.0.1:3000/mcp', '--scopes', 'a', '--json']
      try {
        expect(
          await devCommand([...argv, '--auth-port', String(authPort)], io, Promise.resolve()),
        ).toBe(0)
      } catch (error) {
        if (attempt < 3 && /port \d+ is already in use/.test((error as Error).message)) continue
        throw error
      }
      expect((JSON.parse(io.stdout.join('')) as DevAuthInfo).issuer).toBe(
        `http://127.0.0.1:${authPort}`,
      )
      return
    }
  })

  const R = ['--resource', 'http://127.0.0.1:3000/mcp']
  it.each([
    [
      ['--resource', 'notes', '--scopes', 'a'],
      '--resource "notes" is not an http(s) URL (e.g. http://127.0.0.1:3000/mcp)',
    ],
    [
      ['--resource', 'ftp://127.0.0.1/mcp', '--scopes', 'a'],
      '--resource "ftp://127.0.0.1/mcp" is not an http(s) URL',
    ],
    [
      ['--resource', 'http://notes.example.com/mcp', '--scopes', 'a'],
      '--resource http://notes.example.com/mcp must use https (http is allowed on loopback only',
    ],
    [
      ['--resource', 'http://127.0.0.1:3000/mcp?v=1', '--scopes', 'a'],
      '--resource http://127.0.0.1:3000/mcp?v=1 must not have a query or fragment (RFC 8707 §2)',
    ],
    [
      ['--resource', 'http://127.0.0.1:3000/mcp#x', '--scopes', 'a'],
      '--resource http://127.0.0.1:3000/mcp#x must not have a query or fragment (RFC 8707 §2)',
    ],
    [[...R, '--scopes', ''], '--scopes "" for http://127.0.0.1:3000/mcp names no scope'],
    [[...R, '--scopes', ' , '], '--scopes " , " for http://127.0.0.1:3000/mcp names no scope'],
    [[...R, '--scopes', 'notes:"write"'], '--scopes: "notes:"write"" is not a scope'],
    [R, '--resource needs --scopes'],
    [
      [...R, '--scopes', 'a', '--scopes', 'b'],
      'give one --scopes per --resource, in the same order (got 1 --resource, 2 --scopes)',
    ],
    [
      [...R, '--scopes', 'a', ...R, '--scopes', 'b'],
      '--resource http://127.0.0.1:3000/mcp is given twice',
    ],
    [[...R, '--scopes', 'a', '--auth-port', '3000'], '--auth-port 3000 is the port of --resource'],
    [
      ['--resource', 'https://localhost/mcp', '--scopes', 'a', '--auth-port', '443'],
      '--auth-port 443 is the port of --resource https://localhost/mcp',
    ],
    [
      ['--resource', 'http://127.0.0.1/mcp', '--scopes', 'a', '--auth-port', '80'],
      '--auth-port 80 is the port of --resource http://127.0.0.1/mcp',
    ],
    [
      [...R, '--scopes', 'a', '--auth-port', 'x'],
      '--auth-port must be a number from 0 to 65535, got "x"',
    ],
    [
      [...R, '--scopes', 'a', '--nonce'],
      '--nonce is about the drive, which does not start with --resource',
    ],
    [[...R, '--scopes', 'a', '--port', '3001'], '--port is about the drive'],
    [[...R, '--scopes', 'a', '--insecure'], '--insecure is about the drive'],
    [['--scopes', 'notes:write'], '--scopes goes with --resource'],
  ])('refuses %j in one line, exit 2', async (argv, message) => {
    const io = memoryIo()
    expect(await main(['dev', ...argv], io)).toBe(2)
    expect(io.stdout).toEqual([])
    expect(io.stderr).toHaveLength(1)
    expect(io.stderr[0]).toContain(`callproof: ${message}`)
    expect(io.stderr[0]).toMatch(/ — run `callproof dev --help`$/)
  })

  it('refuses a wrong --resource in the real executable with one line and no stack trace', async () => {
    const run = callproof([
      'dev',
      '--resource',
      'http://notes.example.com/mcp',
      '--scopes',
      'notes:write',
    ])
    expect(await run.exited).toBe(2)
    expect(run.out()).toBe('')
    expect(run.err()).toBe(
      'callproof: --resource http://notes.example.com/mcp must use https (http is allowed on loopback only: 127.0.0.1, [::1], localhost) — run `callproof dev --help`\n',
    )
  })
})
