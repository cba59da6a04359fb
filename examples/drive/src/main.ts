/**
 * `npm run start -w @callproof/example-drive -- --port <port> --issuer <url> [--resource <uri>] [--redis <url>] [--nonce] [--audit <file>]`
 *
 * `--audit <file>` appends the JSON-lines audit event of every decision to `<file>` (the
 * server's `jsonLinesSink`), so that the drive's decisions can be read from outside
 * (`callproof audit <file>`).
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { jsonLinesSink } from '@callproof/server'
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
  audit?: string
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
      audit: { type: 'string' },
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

if (values.audit === '') fail('--audit needs a file path')

// Opened before the drive starts: a path that cannot be appended to stops it with one line.
let audit: ReturnType<typeof jsonLinesSink> | undefined
try {
  audit = values.audit === undefined ? undefined : jsonLinesSink(values.audit)
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}

try {
  const drive = await startDrive({
    port,
    issuer: values.issuer,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.resource !== undefined ? { resource: values.resource } : {}),
    ...(values.redis !== undefined ? { redis: values.redis } : {}),
    ...(values.nonce === true ? { nonce: true } : {}),
    ...(audit !== undefined ? { audit } : {}),
  })
  process.stdout.write(
    `drive listening on ${drive.url} (resource ${drive.resource}, issuer ${values.issuer})${
      values.audit === undefined ? '' : `, audit ${values.audit}`
    }\n`,
  )
  const stop = () => {
    // The audit file is closed after the server: every decision it made is on disk at exit.
    drive
      .close()
      .then(() => audit?.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
