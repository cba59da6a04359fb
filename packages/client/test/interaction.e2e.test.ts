// systemBrowserInteraction() as the root README uses it — `connect(url, { interaction:
// systemBrowserInteraction(), development: true })` — against the real development authorization
// server and the real drive on 127.0.0.1. The "browser" is an injected opener that drives the real
// login, MFA and consent pages headlessly and then delivers the redirect to the interaction's
// loopback listener, as a browser would.
import { spawn } from 'node:child_process'
import { connect as connectSocket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CallproofSession,
  connect,
  createCallproofFetch,
  generateProofKeyPair,
  systemBrowserInteraction,
  type ConnectOptions,
} from '../src/index.js'
import { text } from './support/mcp.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

/** A browser for tests: signs in as `user` on the real pages, then follows the redirect. */
function headlessBrowser(user = 'alice') {
  const pages = devInteraction({ user })
  const opened: URL[] = []
  return {
    opened,
    open: async (href: string) => {
      const url = new URL(href)
      opened.push(url)
      const callback = await pages.authorize(url, { reason: 'authorize' })
      const answer = await fetch(callback)
      await answer.body?.cancel()
    },
  }
}

/** Whether nothing accepts connections on 127.0.0.1:`port` any more. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectSocket(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}

/** Listening sockets of this process, after the loop's close phase has released closed handles. */
async function listeningServers(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1))
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length
}

function portOf(redirectUri: string): number {
  return Number(new URL(redirectUri).port)
}

describe('the session tells the interaction whether it is in development mode', () => {
  it('a development session signs in through a loopback http authorization server', async () => {
    const browser = headlessBrowser()
    const client = await connect(world.drive.url, {
      interaction: systemBrowserInteraction({ open: browser.open }),
      development: true,
      scopes: ['drive:read'],
    })
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.sub).toBe('alice')
    expect(browser.opened.map((u) => u.origin)).toEqual([world.issuer])
    await client.close()
  })

  it('explicit allowLoopbackHttp: false wins over the development session', async () => {
    const browser = headlessBrowser()
    await expect(
      connect(world.drive.url, {
        interaction: systemBrowserInteraction({ open: browser.open, allowLoopbackHttp: false }),
        development: true,
        scopes: ['drive:read'],
      }),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    expect(browser.opened).toEqual([])
  })

  it('outside development a loopback http authorization URL is refused, and non-loopback http always', async () => {
    const browser = headlessBrowser()
    const interaction = systemBrowserInteraction({ open: browser.open })
    const loopback = new URL(`${world.issuer}/auth?state=s1`)
    for (const context of [{ reason: 'authorize' }, { reason: 'authorize', development: false }]) {
      await expect(
        interaction.authorize(loopback, context as { reason: 'authorize' }),
      ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    }
    for (const href of [
      'http://as.example/authorize?state=s2',
      'http://10.0.0.1/authorize?state=s3',
      'http://127.0.0.1.nip.io/authorize?state=s4',
    ]) {
      for (const interactionOf of [
        interaction,
        systemBrowserInteraction({ open: browser.open, allowLoopbackHttp: true }),
      ]) {
        for (const development of [false, true]) {
          await expect(
            interactionOf.authorize(new URL(href), { reason: 'authorize', development }),
          ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
        }
      }
    }
    expect(browser.opened).toEqual([])
  })
})

describe('the redirect listener exists only while an authorization is in flight', () => {
  it('is closed after each completed authorization, including a step-up', async () => {
    const before = await listeningServers()
    const browser = headlessBrowser()
    const interaction = systemBrowserInteraction({ open: browser.open })
    const redirectUri = await interaction.redirectUri()
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    // Asking for the redirect URI (as registration does) opens nothing.
    expect(await refuses(portOf(redirectUri))).toBe(true)

    const client = await connect(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:write'],
    })
    await client.callTool({ name: 'list_files', arguments: {} })
    expect(await refuses(portOf(redirectUri))).toBe(true)
    expect(await listeningServers()).toBe(before)

    // delete_file asks for MFA: a second authorization on the same port, closed again afterwards.
    const deleted = await client.callTool({
      name: 'delete_file',
      arguments: { path: 'notes/todo.txt' },
    })
    expect((deleted as { isError?: boolean }).isError).not.toBe(true)
    expect(browser.opened).toHaveLength(2)
    for (const url of browser.opened) expect(url.searchParams.get('redirect_uri')).toBe(redirectUri)
    expect(await refuses(portOf(redirectUri))).toBe(true)
    expect(await listeningServers()).toBe(before)
    await client.close()
    await interaction.close() // kept for compatibility: nothing left to close
  })

  it('is closed after an authorization that fails: the browser cannot be opened', async () => {
    const before = await listeningServers()
    const interaction = systemBrowserInteraction({
      open: async () => {
        throw new Error('no browser here')
      },
    })
    const port = portOf(await interaction.redirectUri())
    await expect(
      connect(world.drive.url, { interaction, development: true, scopes: ['drive:read'] }),
    ).rejects.toMatchObject({ code: 'ERR_INTERACTION_FAILED' })
    expect(await refuses(port)).toBe(true)
    expect(await listeningServers()).toBe(before)
  })

  it('is closed after an authorization that times out, and a later one opens it again', async () => {
    const before = await listeningServers()
    let listening: boolean | undefined
    let walkAway = true
    // Only the timeout itself is raced against the 2 s: the later authorization on this
    // interaction is answered at once, and the real sign-in below gets the default timeout.
    const interaction = systemBrowserInteraction({
      timeoutMs: 2_000,
      open: async (href) => {
        const url = new URL(href)
        const redirectUri = url.searchParams.get('redirect_uri')!
        if (walkAway) {
          // The user walks away (nothing is opened); meanwhile the listener is up.
          walkAway = false
          listening = !(await refuses(portOf(redirectUri)))
          return
        }
        // A browser that comes straight back with the authorization server's redirect.
        const state = url.searchParams.get('state') ?? ''
        const answer = await fetch(`${redirectUri}?code=later&state=${encodeURIComponent(state)}`)
        await answer.body?.cancel()
      },
    })
    const redirectUri = await interaction.redirectUri()
    const port = portOf(redirectUri)
    await expect(
      connect(world.drive.url, { interaction, development: true, scopes: ['drive:read'] }),
    ).rejects.toMatchObject({
      code: 'ERR_INTERACTION_FAILED',
      message: /no redirect received within 2000 ms/,
    })
    expect(listening).toBe(true)
    expect(await refuses(port)).toBe(true)
    expect(await listeningServers()).toBe(before)

    // The same interaction listens again, on the same port, for its next authorization.
    const later = new URL(`${world.issuer}/auth`)
    later.searchParams.set('state', 'later')
    later.searchParams.set('redirect_uri', redirectUri)
    const redirect = await interaction.authorize(later, { reason: 'authorize', development: true })
    expect(redirect.port).toBe(String(port))
    expect(redirect.searchParams.get('code')).toBe('later')
    expect(await refuses(port)).toBe(true)
    expect(await listeningServers()).toBe(before)

    // And the port serves a real sign-in afterwards.
    const browser = headlessBrowser()
    const client = await connect(world.drive.url, {
      interaction: systemBrowserInteraction({ port, open: browser.open }),
      development: true,
      scopes: ['drive:read'],
    })
    await client.callTool({ name: 'list_files', arguments: {} })
    expect(browser.opened).toHaveLength(1)
    expect(browser.opened[0]?.searchParams.get('redirect_uri')).toBe(redirectUri)
    expect(await refuses(port)).toBe(true)
    expect(await listeningServers()).toBe(before)
    await client.close()
  })
})

/** Runs test/fixtures/snippet.ts in a child process; resolves when (and if) it exits. */
function runSnippet(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@callproof/source', '--import', 'tsx', 'test/fixtures/snippet.ts', ...args],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, killed })
    })
  })
}

describe('a script using the README snippet', () => {
  it('exits by itself after client.close(), step-up included', async () => {
    const run = await runSnippet(
      [world.drive.url, 'delete_file', JSON.stringify({ path: 'reports/q3.csv' })],
      25_000,
    )
    expect({ killed: run.killed, code: run.code }, run.stderr).toEqual({ killed: false, code: 0 })
    expect(JSON.parse(run.stdout)).toMatchObject({ content: [{ type: 'text' }] })
    expect(JSON.parse(run.stdout).isError).not.toBe(true)
  }, 40_000)
})

describe('the options type says an interaction or client credentials is required', () => {
  it('connect(url, { scopes }) does not compile, and JavaScript callers get ERR_INVALID_OPTIONS', async () => {
    // @ts-expect-error -- neither an interaction nor client credentials
    const bare: ConnectOptions = { scopes: ['drive:read'] }
    // @ts-expect-error -- neither an interaction nor client credentials
    const connecting = connect(world.drive.url, { scopes: ['drive:read'], development: true })
    await expect(connecting).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
    await expect(createCallproofFetch(world.drive.url, bare)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    })
    const keyPair = await generateProofKeyPair()
    // @ts-expect-error -- neither an interaction nor client credentials
    expect(() => new CallproofSession(world.drive.url, { keyPair })).toThrow(
      /an interaction \(or an agent grant: clientCredentials, enterpriseAuthorization or workloadIdentity\)/,
    )
    // Either one compiles.
    const agent: ConnectOptions = { clientCredentials: { clientId: 'agent', clientSecret: 's' } }
    const user: ConnectOptions = { interaction: systemBrowserInteraction() }
    expect(agent.clientCredentials?.clientId).toBe('agent')
    expect(user.interaction).toBeDefined()
  })
})
