/**
 * `npm run start -w @callproof/example-drive -- --port <port> --issuer <url> [--resource <uri>] [--redis <url>] [--nonce]`
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { startDrive } from './index.js'

function fail(message: string): never {
  process.stderr.write(`drive: ${message}\n`)
  process.exit(2)
}

let values: {
  port?: string
  issuer?: string
  resource?: string
  redis?: string
  nonce?: boolean
  host?: string
}
try {
  ;({ values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      issuer: { type: 'string' },
      resource: { type: 'string' },
      redis: { type: 'string' },
      nonce: { type: 'boolean' },
    },
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
for (const [name, value] of [
  ['issuer', values.issuer],
  ['resource', values.resource],
] as const) {
  if (value !== undefined && !URL.canParse(value)) fail(`--${name} ${value} is not an absolute URL`)
}

try {
  const drive = await startDrive({
    port,
    issuer: values.issuer,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.resource !== undefined ? { resource: values.resource } : {}),
    ...(values.redis !== undefined ? { redis: values.redis } : {}),
    ...(values.nonce === true ? { nonce: true } : {}),
  })
  process.stdout.write(
    `drive listening on ${drive.url} (resource ${drive.resource}, issuer ${values.issuer})\n`,
  )
  const stop = () => {
    drive.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
