/**
 * `npm run start -w @callproof/example-everything -- --port <port> --issuer <url> [--sdk v1|v2]`
 *
 * `--sdk v2` serves MCP 2026-07-28 (and 2025-11-25) on the MCP SDK v2; the default is v1.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { startEverything } from './index.js'

function fail(message: string): never {
  process.stderr.write(`everything: ${message}\n`)
  process.exit(2)
}

let values: { port?: string; issuer?: string; sdk?: string }
try {
  ;({ values } = parseArgs({
    options: { port: { type: 'string' }, issuer: { type: 'string' }, sdk: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  }))
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}

if (values.issuer === undefined) fail('--issuer <authorization server URL> is required')
const port = values.port === undefined ? 0 : Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535)
  fail(`--port ${values.port ?? ''} is not a port number`)
if (!URL.canParse(values.issuer)) fail(`--issuer ${values.issuer} is not an absolute URL`)
if (values.sdk !== undefined && values.sdk !== 'v1' && values.sdk !== 'v2') {
  fail(`--sdk must be v1 or v2, got ${JSON.stringify(values.sdk.slice(0, 20))}`)
}
const sdk = values.sdk as 'v1' | 'v2' | undefined

try {
  const server = await startEverything({
    port,
    issuer: values.issuer,
    ...(sdk !== undefined ? { sdk } : {}),
  })
  process.stdout.write(
    `everything listening on ${server.url} (resource ${server.url}, issuer ${values.issuer})\n`,
  )
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
