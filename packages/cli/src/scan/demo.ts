/**
 * The scan in `callproof demo --insecure`: the same measurements a team would run against its own
 * server, run against a fresh insecure baseline (the demo's own baseline already holds alice's
 * authorization when the story ends, so it would only show that it serves anyone).
 */
import type { Io } from '../io.js'
import { startStack } from '../stack.js'
import { loginCaller } from './callers.js'
import type { ScanCaller } from './callers.js'
import { runScan } from './checks.js'
import type { ScanReport } from './checks.js'
import { formatScanReport } from './format.js'

/** The command a reader would type for the same scan (shown above the report). */
export const DEMO_SCAN_COMMAND =
  'callproof scan <url> --login --user alice --user bob --probe whoami'

/**
 * Starts a fresh baseline with its development authorization server, scans it as alice (A) and
 * bob (B) with `whoami` as the probe, closes everything, and returns the report and its text.
 */
export async function scanInsecureBaseline(
  io: Pick<Io, 'color'>,
): Promise<{ readonly report: ScanReport; readonly text: string }> {
  const stack = await startStack({ drive: 'baseline' })
  const callers: ScanCaller[] = []
  try {
    for (const [name, user] of [
      ['A', 'alice'],
      ['B', 'bob'],
    ] as const) {
      callers.push(
        await loginCaller({ name, url: stack.url, user, development: true, say: () => undefined }),
      )
    }
    const probes = [{ tool: 'whoami', args: {} }]
    const report = await runScan({ url: stack.url, callers, probes })
    const text = formatScanReport(io, report, {
      callers: callers.map((c) => `${c.name} (${c.how})`),
      probes: ['whoami {}'],
    })
    return { report, text: `$ ${DEMO_SCAN_COMMAND}\n${text}` }
  } finally {
    for (const caller of callers) await caller.close().catch(() => undefined)
    await stack.close()
  }
}
