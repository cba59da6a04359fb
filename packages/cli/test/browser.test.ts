// `callproof call` without --user: the real browser path. The authorization URL is opened in a
// headless Chromium (playwright-core; found by scripts/system.mjs); a person's clicks are played
// on the real pages, and the browser follows the last redirect to the CLI's own loopback listener.
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, chromiumPath } from '../../../scripts/system.mjs'
import { callCommand } from '../src/call.js'
import { memoryIo, startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'

let stack: Stack
let browser: Browser

beforeAll(async () => {
  stack = await startStack({ drive: 'callproof' })
  browser = await chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] })
})
afterAll(async () => {
  await browser?.close()
  await stack?.close()
})

/**
 * Plays alice at the pages until the browser lands on the CLI's loopback redirect, or until the
 * CLI has finished (`done()`): the CLI may take the redirect and close its listener before this
 * page has loaded the answer.
 */
async function actAsAlice(
  page: Page,
  url: string,
  pagesSeen: string[],
  done: () => boolean,
): Promise<void> {
  await page.goto(url)
  for (let step = 0; step < 10; step++) {
    const here = new URL(page.url())
    if (here.pathname === '/callback' || done()) return
    const heading = (await page.getByRole('heading', { level: 1 }).first().textContent()) ?? ''
    pagesSeen.push(heading.trim())
    if ((await page.getByLabel('Password').count()) > 0) {
      await page.getByLabel('User name').fill('alice')
      await page.getByLabel('Password').fill('alice-dev-password')
      await page.getByRole('button', { name: 'Sign in' }).click()
    } else if ((await page.getByRole('button', { name: 'Allow' }).count()) > 0) {
      await page.getByRole('button', { name: 'Allow' }).click()
    } else if ((await page.getByRole('button', { name: 'Approve' }).count()) > 0) {
      await page.getByRole('button', { name: 'Approve' }).click()
    } else {
      throw new Error(`unexpected page: ${heading}`)
    }
    await page.waitForLoadState('load')
  }
  throw new Error('no redirect back to the CLI after 10 pages')
}

describe('callproof call with browser sign-in', () => {
  it('signs in through the real pages and the loopback redirect, then calls the tool', async () => {
    const context = await browser.newContext()
    const opened: string[] = []
    const pagesSeen: string[] = []
    const io = memoryIo()
    let finished = false
    let acting: Promise<void> = Promise.resolve()
    const code = await callCommand([stack.url, 'whoami'], io, {
      openUrl: async (url) => {
        opened.push(url)
        // Like a browser the user switches to: it runs on its own while the CLI waits.
        const page = await context.newPage()
        acting = actAsAlice(page, url, pagesSeen, () => finished).catch((error: unknown) => {
          // Once the CLI has its redirect, the page may fail to load the listener's answer (the
          // listener closes at once); only a failure before that is the browser path failing.
          if (!finished) pagesSeen.push(`failed: ${String(error)}`)
        })
      },
    })
    finished = true
    // Closing the context ends whatever the page still waits for (its catch ignores that now).
    await context.close()
    await acting
    expect(code).toBe(0)
    expect(JSON.parse(io.stdout.join(''))).toMatchObject({ sub: 'alice' })
    expect(opened).toHaveLength(1)
    expect(new URL(opened[0] ?? '').origin).toBe(stack.issuer)
    // The redirect went to the CLI's own listener on loopback.
    const redirect = new URL(new URL(opened[0] ?? '').searchParams.get('redirect_uri') ?? '')
    expect(redirect.hostname).toBe('127.0.0.1')
    expect(pagesSeen.length).toBeGreaterThan(0)
    expect(pagesSeen.join()).not.toContain('failed:')
    expect(io.stderr.join('\n')).toContain('open this URL to continue')
  })
})
