// Takes the screenshots of the classroom page shown in docs/walkthrough.md (docs/img/*.png):
//   node --conditions=@callproof/source --import tsx packages/cli/test/support/screenshots.ts
// Plays both modes, serves the page on loopback, and photographs it in headless Chromium.
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath } from '../../../../scripts/system.mjs'
import { memoryIo } from '../../src/index.js'
import { recordLesson, serveLesson } from '../../src/web.js'

const out = (name: string) =>
  fileURLToPath(new URL(`../../../../docs/img/${name}`, import.meta.url))

const server = await serveLesson(await recordLesson(memoryIo()))
const browser = await chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] })
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await page.goto(server.url)
  await page.locator('body[data-ready="true"]').waitFor()
  // The timeline: the header and the first steps, both columns.
  await page.screenshot({ path: out('lesson-timeline.png') })
  // An attack, side by side: the baseline runs it, callproof refuses it.
  const attack = page.locator('section.step[data-key="token-own-proof"]')
  await attack.scrollIntoViewIfNeeded()
  await attack.screenshot({ path: out('lesson-attack.png') })
  // One request opened: headers, decoded token and proof, the decision.
  const replay = page.locator('section.step[data-key="replay"]')
  await replay.locator('.col.callproof details.exchange summary').first().click()
  await replay.locator('.col.callproof').screenshot({ path: out('lesson-request.png') })
} finally {
  await browser.close()
  await server.close()
}
