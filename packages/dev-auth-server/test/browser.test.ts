import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, chromiumPath } from '../../../scripts/system.mjs'
import { ACR_MFA, DEV_MFA_CODE, MCP_TOOL_CALL, argumentsDigest } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { consentPage } from '../src/pages/pages.js'
import { RESOURCE, TestClient, startServer } from './helpers.js'

// The real pages in a real browser: Chromium (CHROMIUM_PATH or a usual location, see
// scripts/system.mjs) driven by playwright-core. The client's redirect URI is a real loopback
// listener (any port is fine for the native dev client, RFC 8252 §7.3), so the browser really
// follows the last redirect back to the "app".

let server: DevAuthServer
let browser: Browser
let callbackServer: Server
let redirectUri: string
// Pending redirects by `state`, so that one test's unfinished flow cannot swallow another's.
const callbacks = new Map<string, (url: URL) => void>()

beforeAll(async () => {
  server = await startServer()
  callbackServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', redirectUri)
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.end('You can close this window.\n')
    // Only the redirect itself, not the browser's favicon request.
    if (url.pathname === '/callback') callbacks.get(url.searchParams.get('state') ?? '')?.(url)
  })
  await new Promise<void>((resolve) => callbackServer.listen(0, '127.0.0.1', resolve))
  redirectUri = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/callback`
  browser = await chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  callbackServer?.closeAllConnections()
  await new Promise((resolve) => callbackServer?.close(resolve))
})

function callbackFor(state: string): Promise<URL> {
  return new Promise((resolve) => callbacks.set(state, resolve))
}

async function open(params: Record<string, string | undefined> = {}) {
  const client = await TestClient.create(server.issuer, { redirectUri })
  const request = await client.authorizationUrl(params)
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems: string[] = []
  // A CSP violation (say, the form-action blocking the hop back to the client) shows up here.
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  page.on('pageerror', (e) => problems.push(e.message))
  const callback = callbackFor(request.state)
  await page.goto(request.url.href)
  return { client, request, page, callback, problems, context }
}

async function signIn(page: Page, user: string, password: string) {
  await expect(page.getByRole('heading', { level: 1 })).toBeDefined()
  await page.getByLabel('User name').fill(user)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

describe('the pages in headless Chromium', () => {
  it('sign in, consent, and the code reaches the client', async () => {
    const { client, request, page, callback, problems, context } = await open({
      scope: 'drive:read drive:write',
    })
    expect(await page.title()).toContain('Sign in')
    await signIn(page, 'alice', 'alice-dev-password')
    await page.waitForSelector('form#consent')
    const text = await page.locator('main').innerText()
    expect(text).toContain('Allow access?')
    expect(text).toContain('see and read your drive (drive:read)')
    expect(text).toContain('create, change and delete your drive (drive:write)')
    expect(text).toContain(RESOURCE)
    await page.getByRole('button', { name: 'Allow' }).click()
    const url = await callback
    expect(url.searchParams.get('error')).toBeNull()
    const tokens = await client.exchange(url, request.verifier, request.state)
    const { payload } = await client.verify(tokens.access_token)
    expect(payload.sub).toBe('alice')
    expect(payload.scope).toBe('drive:read drive:write')
    expect(problems).toEqual([])
    await context.close()
  })

  it('a wrong password shows an error on the same page', async () => {
    const { page, context } = await open()
    await signIn(page, 'alice', 'not-the-password')
    await expect(page.getByRole('alert').innerText()).resolves.toContain(
      'Wrong user name or password.',
    )
    expect(await page.locator('form#login').count()).toBe(1)
    await context.close()
  })

  it('step-up: password, then the one-time code, then acr mfa in the token', async () => {
    const { client, request, page, callback, problems, context } = await open({
      acr_values: ACR_MFA,
    })
    await expect(page.locator('h1').innerText()).resolves.toContain('second factor')
    await signIn(page, 'bob', 'bob-dev-password')
    await page.waitForSelector('form#mfa')
    await page.getByLabel('One-time code').fill('111111')
    await page.getByRole('button', { name: 'Verify' }).click()
    await expect(page.getByRole('alert').innerText()).resolves.toContain('Wrong code')
    await page.getByLabel('One-time code').fill(DEV_MFA_CODE)
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.waitForSelector('form#consent')
    await page.getByRole('button', { name: 'Allow' }).click()
    const url = await callback
    const tokens = await client.exchange(url, request.verifier, request.state)
    const { payload } = await client.verify(tokens.access_token)
    expect(payload.sub).toBe('bob')
    expect(payload.acr).toBe(ACR_MFA)
    // The refused code answers 401, which the browser logs; nothing else may appear.
    expect(problems).toEqual([
      'Failed to load resource: the server responded with a status of 401 (Unauthorized)',
    ])
    await context.close()
  })

  it('per-call approval: the tool and its arguments in plain words, Approve', async () => {
    const args = { path: 'notes.txt', with: 'bob' }
    const detail = {
      type: MCP_TOOL_CALL,
      resource: RESOURCE,
      tool: 'share_file',
      args: argumentsDigest(args),
      arguments: args,
    }
    const { client, request, page, callback, problems, context } = await open({
      scope: 'drive:share',
      authorization_details: JSON.stringify([detail]),
    })
    await signIn(page, 'alice', 'alice-dev-password')
    await page.waitForSelector('form#approval')
    await expect(page.locator('h1').innerText()).resolves.toBe(
      'Allow agent callproof development client to call share_file with path=notes.txt, with=bob?',
    )
    const text = await page.locator('main').innerText()
    expect(text).toContain('this one call only')
    await page.getByRole('button', { name: 'Approve' }).click()
    const url = await callback
    const tokens = await client.exchange(url, request.verifier, request.state)
    const { payload } = await client.verify(tokens.access_token)
    expect(payload.authorization_details).toEqual([
      { type: MCP_TOOL_CALL, resource: RESOURCE, tool: 'share_file', args: detail.args },
    ])
    expect(problems).toEqual([])
    await context.close()
  })

  it('per-call approval: invisible and bidi characters in arguments are shown and warned about', async () => {
    const approvalOf = async (args: Record<string, string>) => {
      const { page, context, callback } = await open({
        scope: 'drive:share',
        authorization_details: JSON.stringify([
          {
            type: MCP_TOOL_CALL,
            resource: RESOURCE,
            tool: 'share_file',
            args: argumentsDigest(args),
            arguments: args,
          },
        ]),
      })
      await signIn(page, 'alice', 'alice-dev-password')
      await page.waitForSelector('form#approval')
      const shown = {
        h1: await page.locator('h1').innerText(),
        values: await page.locator('dl.args dd').allInnerTexts(),
        warnings: await page.locator('[data-hidden-warning]').count(),
        marked: await page.locator('[data-hidden-char]').count(),
      }
      await page.getByRole('button', { name: 'Deny' }).click()
      await callback
      await context.close()
      return shown
    }
    const plain = await approvalOf({ path: 'notes.txt', with: 'bob' })
    // bob followed by a zero-width space, and a file name turned around by U+202E
    const tricked = await approvalOf({ path: 'notes\u202etxt.exe', with: 'bob\u200b' })
    expect(plain.warnings).toBe(0)
    expect(plain.marked).toBe(0)
    expect(tricked.warnings).toBe(1)
    expect(tricked.values).toEqual(['notes⟨U+202E⟩txt.exe', 'bob⟨U+200B⟩'])
    expect(tricked.values[1]).not.toBe(plain.values[1])
    expect(tricked.h1).toBe(
      'Allow agent callproof development client to call share_file with path="notes⟨U+202E⟩txt.exe", with="bob⟨U+200B⟩"?',
    )
    // Each hidden character is marked where it stands: twice in the question, twice in the list.
    expect(tricked.marked).toBe(4)
  })

  it('the consent page marks hidden characters in what the client asks for', async () => {
    const page = await browser.newPage()
    await page.setContent(
      consentPage({
        action: '/x',
        csrf: 'c',
        client: { id: 'agent', name: 'Files\u2066 helper\u2069\u00ad' },
        user: 'alice',
        scopes: [{ resource: 'https://drive.example/mcp\ufeff', scopes: ['drive:read'] }],
      }).html,
    )
    expect(await page.locator('[data-hidden-warning]').count()).toBe(1)
    const text = await page.locator('body').innerText()
    expect(text).toContain('Files⟨U+2066⟩ helper⟨U+2069⟩⟨U+00AD⟩')
    expect(text).toContain('https://drive.example/mcp⟨U+FEFF⟩')
    const clean = await browser.newPage()
    await clean.setContent(
      consentPage({
        action: '/x',
        csrf: 'c',
        client: { id: 'agent', name: 'Files helper' },
        user: 'alice',
        scopes: [{ resource: 'https://drive.example/mcp', scopes: ['drive:read'] }],
      }).html,
    )
    expect(await clean.locator('[data-hidden-warning]').count()).toBe(0)
    await page.close()
    await clean.close()
  })

  it('denying consent sends access_denied to the client', async () => {
    const { request, page, callback, problems, context } = await open()
    await signIn(page, 'alice', 'alice-dev-password')
    await page.waitForSelector('form#consent')
    await page.getByRole('button', { name: 'Deny' }).click()
    const url = await callback
    expect(url.searchParams.get('error')).toBe('access_denied')
    expect(url.searchParams.get('state')).toBe(request.state)
    expect(url.searchParams.get('code')).toBeNull()
    expect(problems).toEqual([])
    await context.close()
  })

  it('denying an approval sends access_denied to the client', async () => {
    const args = { path: 'secret.txt', with: 'eve' }
    const { page, callback, context } = await open({
      scope: 'drive:share',
      authorization_details: JSON.stringify([
        {
          type: MCP_TOOL_CALL,
          resource: RESOURCE,
          tool: 'share_file',
          args: argumentsDigest(args),
          arguments: args,
        },
      ]),
    })
    await signIn(page, 'alice', 'alice-dev-password')
    await page.waitForSelector('form#approval')
    await page.getByRole('button', { name: 'Deny' }).click()
    const url = await callback
    expect(url.searchParams.get('error')).toBe('access_denied')
    await context.close()
  })

  it('signing out ends the session: the next authorization asks for the password again', async () => {
    const { page, callback, problems, context } = await open()
    await signIn(page, 'alice', 'alice-dev-password')
    await page.waitForSelector('form#consent')
    await page.getByRole('button', { name: 'Allow' }).click()
    await callback
    await page.goto(`${server.issuer}/session/end`)
    await expect(page.locator('h1').innerText()).resolves.toBe('Sign out?')
    await page.getByRole('button', { name: 'Yes, sign me out' }).click()
    await page.waitForSelector('text=You are signed out')
    const again = await TestClient.create(server.issuer, { redirectUri })
    await page.goto((await again.authorizationUrl()).url.href)
    await page.waitForSelector('form#login')
    expect(problems).toEqual([])
    await context.close()
  })

  it('the pages cannot be framed by another origin', async () => {
    const { page, context } = await open()
    const loginUrl = page.url()
    // An attacker page on another loopback port tries to frame the sign-in page.
    const framer = createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html')
      res.end(`<iframe id="f" src="${loginUrl}"></iframe>`)
    })
    await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve))
    const attacker = await context.newPage()
    const blocked: string[] = []
    attacker.on('console', (m) => blocked.push(m.text()))
    await attacker.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`)
    await attacker.waitForTimeout(300)
    const frame = attacker.frames().find((f) => f !== attacker.mainFrame())
    const framedForm = frame
      ? await frame
          .locator('form#login')
          .count()
          .catch(() => 0)
      : 0
    expect(framedForm).toBe(0)
    framer.closeAllConnections()
    await new Promise((resolve) => framer.close(resolve))
    await context.close()
  })
})
