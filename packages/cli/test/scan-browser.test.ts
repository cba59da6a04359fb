// `callproof scan --login` without --user: caller A signs in through the system-browser path. The
// authorization URL is opened in Debian's headless Chromium (playwright-core), a person's clicks
// are played on the real pages, and the browser follows the redirect to the scanner's loopback
// listener.
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memoryIo, startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'
import type { ScanReport } from '../src/scan/checks.js'
import { scanCommand } from '../src/scan/command.js'

let stack: Stack
let browser: Browser

beforeAll(async () => {
  stack = await startStack({ drive: 'callproof' })
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  })
})
afterAll(async () => {
  await browser?.close()
  await stack?.close()
})

/** Signs in as alice and allows, page by page, until the scanner has its redirect. */
async function signInAsAlice(page: Page, url: string, done: () => boolean): Promise<string[]> {
  const seen: string[] = []
  await page.goto(url)
  for (let step = 0; step < 10 && !done(); step++) {
    if (new URL(page.url()).pathname === '/callback') break
    seen.push(((await page.getByRole('heading', { level: 1 }).first().textContent()) ?? '').trim())
    if ((await page.getByLabel('Password').count()) > 0) {
      await page.getByLabel('User name').fill('alice')
      await page.getByLabel('Password').fill('alice-dev-password')
      await page.getByRole('button', { name: 'Sign in' }).click()
    } else if ((await page.getByRole('button', { name: 'Allow' }).count()) > 0) {
      await page.getByRole('button', { name: 'Allow' }).click()
    } else {
      throw new Error(`unexpected page: ${seen.at(-1) ?? ''}`)
    }
    await page.waitForLoadState('load')
  }
  return seen
}

describe('callproof scan --login with browser sign-in', () => {
  it('signs caller A in through the real pages, then runs the proof checks', async () => {
    const context = await browser.newContext()
    const opened: string[] = []
    let pages: Promise<string[]> = Promise.resolve([])
    let finished = false
    const io = memoryIo()
    const code = await scanCommand([stack.url, '--login', '--probe', 'whoami', '--json'], io, {
      openUrl: async (url) => {
        opened.push(url)
        const page = await context.newPage()
        // Like a browser the user switches to: it runs on its own while the scanner waits. Once
        // the scanner has its redirect, the page may fail to load the listener's closing answer.
        pages = signInAsAlice(page, url, () => finished).catch((error: unknown) =>
          finished ? [] : [`failed: ${String(error)}`],
        )
      },
    })
    finished = true
    await context.close()
    const seen = await pages
    expect(seen.join()).not.toContain('failed:')
    expect(opened).toHaveLength(1)
    expect(new URL(opened[0] ?? '').origin).toBe(stack.issuer)
    const report = JSON.parse(io.stdout.join('')) as ScanReport
    expect(Object.fromEntries(report.checks.map((c) => [c.id, c.status]))).toEqual({
      'unauthenticated-access': 'ok',
      'persistent-authorization': 'ok',
      'session-as-credential': 'ok',
      'token-not-sender-constrained': 'ok',
      'request-replay': 'ok',
      'call-not-bound': 'ok',
      'session-not-bound-to-caller': 'skipped',
    })
    expect(code).toBe(0)
    expect(io.stderr.join('\n')).toContain('caller A: open this URL to sign in')
  })
})
