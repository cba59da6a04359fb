// `callproof demo --web`: the classroom page in a real headless Chromium (playwright-core, found by
// scripts/system.mjs). Both modes are played once with every request kept; the page must show
// every step in both columns, a request's decoded proof when opened, and hostile text as text.
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM_ARGS, chromiumPath } from '../../../scripts/system.mjs'
import { demoCommand } from '../src/demo.js'
import type { DemoReport } from '../src/demo.js'
import { memoryIo, runDemo } from '../src/index.js'
import { buildLesson } from '../src/lesson.js'
import type { Lesson } from '../src/lesson.js'
import { LESSON } from '../src/story.js'
import { serveLesson } from '../src/web.js'
import type { LessonServer } from '../src/web.js'

let browser: Browser
let baseline: DemoReport
let callproof: DemoReport
let lesson: Lesson
let server: LessonServer

beforeAll(async () => {
  baseline = await runDemo({ mode: 'baseline', wire: true })
  callproof = await runDemo({ mode: 'callproof', wire: true })
  lesson = buildLesson(baseline, callproof)
  server = await serveLesson(lesson)
  browser = await chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

/** Opens a page and collects what must not happen there: errors, dialogs, any other request. */
async function open(url: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`)
    void d.dismiss()
  })
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) problems.push(`request to ${r.url()}`)
  })
  await page.goto(url)
  await page.locator('body[data-ready="true"]').waitFor({ timeout: 15_000 })
  return { page, problems }
}

describe('callproof demo --web: the page', () => {
  it('plays the whole story: every step, in both columns, with its outcome', async () => {
    const { page, problems } = await open(server.url)
    const steps = page.locator('section.step')
    expect(await steps.count()).toBe(Object.keys(LESSON).length)
    for (const row of baseline.rows) {
      const step = page.locator(`section.step[data-key="${row.key}"]`)
      await expect
        .poll(() => step.locator('.col.baseline .verdict').textContent())
        .toContain(row.actual)
      const secure = callproof.rows.find((r) => r.key === row.key)
      expect(await step.locator('.col.callproof .verdict').textContent()).toContain(secure?.actual)
    }
    // The baseline's successful attacks are shown as attacks that succeeded, callproof's refusals
    // as defended.
    const ride = page.locator('section.step[data-key="token-own-proof"]')
    expect(await ride.locator('.col.baseline .verdict').textContent()).toMatch(
      /^✗ attack succeeded/,
    )
    expect(await ride.locator('.col.baseline').getAttribute('class')).toContain('breached')
    expect(await ride.locator('.col.callproof .verdict').textContent()).toMatch(/^✓ defended/)
    expect(problems).toEqual([])
    await page.context().close()
  })

  it('opens a request to its headers, decoded token and proof, and the server’s decision', async () => {
    const { page, problems } = await open(server.url)
    const column = page.locator('section.step[data-key="replay"] .col.callproof')
    const request = column.locator('details.exchange').first()
    await request.locator('summary').click()
    const text = (await request.textContent()) ?? ''
    // The captured proof, decoded: its header (with the key) and its claims (with the binding).
    expect(text).toContain('DPoP proof, decoded, signature elided')
    expect(text).toContain('"typ": "dpop+jwt"')
    expect(text).toContain('"htm": "POST"')
    expect(text).toContain('"mcp": {')
    expect(text).toContain('"name": "write_file"')
    // alice's token, decoded, bound to her key.
    expect(text).toContain('"cnf": {')
    expect(text).toContain('"sub": "alice"')
    expect(text).toContain('refused 401 invalid_dpop_proof ERR_REPLAY')
    expect(text).toContain('WWW-Authenticate: DPoP')
    // The raw credentials are shortened, never shown whole.
    const token = callproof.rows.find((r) => r.key === 'replay')?.exchanges?.[0]?.request.headers
      .authorization
    expect(token?.length).toBeGreaterThan(100)
    expect(text).not.toContain(token?.slice(30))
    expect(await request.locator('pre').first().isVisible()).toBe(true)
    expect(problems).toEqual([])
    await page.context().close()
  })

  it('serves a strict CSP, loopback only, nothing but the page and its JSON', async () => {
    const page = await fetch(server.url)
    expect(page.headers.get('content-security-policy')).toMatch(
      /^default-src 'none'; script-src 'sha256-/,
    )
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline')
    const json = await fetch(new URL('/lesson.json', server.url))
    expect(json.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(((await json.json()) as Lesson).steps).toHaveLength(lesson.steps.length)
    expect((await fetch(new URL('/other', server.url))).status).toBe(404)
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405)
    // Another name for 127.0.0.1 (DNS rebinding) is refused.
    const port = new URL(server.url).port
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const r = request(
        {
          host: '127.0.0.1',
          port,
          path: '/lesson.json',
          headers: { host: `evil.example:${port}` },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      r.on('error', reject)
      r.end()
    })
    expect(status).toBe(403)
  })
})

describe('callproof demo --web: hostile text from the wire', () => {
  it('shows a tool name and arguments holding <script> and <img onerror> as text; nothing runs', async () => {
    // alice's captured write_file request, as a hostile server or client could have shaped it:
    // the page takes tool names, arguments and servers' words from the wire.
    const hostileName = '<img src=x onerror="window.__pwned=1">\u202e'
    const hostileArg = '</pre><script>window.__pwned=2</script>'
    const rows = callproof.rows.map((row) =>
      row.key !== 'write'
        ? row
        : {
            ...row,
            action: `writes ${hostileArg}`,
            detail: hostileName,
            exchanges: (row.exchanges ?? []).map((x) => ({
              ...x,
              request: {
                ...x.request,
                body: JSON.stringify({
                  jsonrpc: '2.0',
                  id: 9,
                  method: 'tools/call',
                  params: { name: hostileName, arguments: { path: hostileArg } },
                }),
              },
              answer: { ...x.answer, description: hostileArg },
            })),
          },
    )
    const hostile = await serveLesson(buildLesson(baseline, { ...callproof, rows }))
    try {
      const { page, problems } = await open(hostile.url)
      const column = page.locator('section.step[data-key="write"] .col.callproof')
      await column.locator('details.exchange summary').last().click()
      const text = (await column.textContent()) ?? ''
      expect(text).toContain(`tools/call ${hostileName.replace('\u202e', '\\u{202e}')}`)
      expect(text).toContain(hostileArg)
      // A bidi control is shown as an escape: it cannot reorder what the class reads.
      expect(text).toContain('onerror="window.__pwned=1">\\u{202e}')
      expect(text).not.toContain('\u202e')
      expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined()
      // Shown as text, not parsed: no element came out of the data.
      expect(await page.locator('img').count()).toBe(0)
      expect(await page.locator('script').count()).toBe(1)
      expect(problems).toEqual([])
      await page.context().close()
    } finally {
      await hostile.close()
    }
  })
})

describe('callproof demo --web: the command', () => {
  it('plays both modes, prints the loopback URL, serves until told to stop, exits 0', async () => {
    const io = memoryIo()
    let served = ''
    const code = await demoCommand(['--web', '--port', '0'], io, {
      served: async (url) => {
        served = url
        expect((await fetch(url)).status).toBe(200)
      },
    })
    expect(code).toBe(0)
    expect(served).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    expect(io.stdout.join('\n')).toContain(served)
    await expect(fetch(served)).rejects.toThrow()
  })

  it('refuses --web with options it does not take', async () => {
    const io = memoryIo()
    await expect(demoCommand(['--web', '--json'], io)).rejects.toThrow(/--web plays both modes/)
    await expect(demoCommand(['--port', '8080'], io)).rejects.toThrow(/--port goes with --web/)
  })
})
