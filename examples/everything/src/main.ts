/**
 * `npm run start -w @callproof/example-everything -- --port <port> --issuer <url>`
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { startEverything } from './index.js'

function fail(message: string): never {
  process.stderr.write(`everything: ${message}\n`)
  process.exit(2)
}

let values: { port?: string; issuer?: string }
try {
  ;({ values } = parseArgs({
    options: { port: { type: 'string' }, issuer: { type: 'string' } },
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

try {
  const server = await startEverything({ port, issuer: values.issuer })
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
