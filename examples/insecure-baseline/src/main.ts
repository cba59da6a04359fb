/**
 * Starts the DELIBERATELY INSECURE baseline drive on loopback:
 *
 *     npm run start -w @callproof/example-insecure-baseline -- --issuer <authorization server URL> [--port <port>]
 */
import { parseArgs } from 'node:util'
import { startInsecureDrive } from './index.js'

const { values } = parseArgs({
  options: { port: { type: 'string' }, issuer: { type: 'string' } },
})
if (values.issuer === undefined) {
  console.error('insecure-baseline: --issuer <authorization server URL> is required')
  process.exit(2)
}
const drive = await startInsecureDrive({ issuer: values.issuer, port: Number(values.port ?? 0) })
console.error(
  `⚠️  INSECURE BASELINE (authorization cached process-wide, no per-tool checks, no DPoP) at ${drive.url}`,
)
console.error('   For demonstrating caller identity confusion only. Ctrl-C to stop.')
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void drive.close().then(() => process.exit(0)))
}
