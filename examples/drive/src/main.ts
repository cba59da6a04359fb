/**
 * `npm run start -w @callproof/example-drive -- --port <port> --issuer <url> [--resource <uri>] [--redis <url>] [--nonce] [--audit <file>] [--mail <url> --mail-client <id> --mail-key <pem file>] [--sdk v1|v2]`
 *
 * `--sdk v2` runs the drive on the MCP SDK v2 (`@callproof/server/v2`: MCP 2026-07-28 and
 * 2025-11-25); the default is v1.
 *
 * `--mail <url>` adds the `email_file` tool, which sends through the mail API at `<url>` as the
 * caller of each call: the drive exchanges the caller's token (RFC 8693) for a mail credential,
 * authenticating as client `--mail-client` with the PKCS #8 ES256 key in `--mail-key`.
 *
 * `--audit <file>` appends the JSON-lines audit event of every decision to `<file>` (the
 * server's `jsonLinesSink`), so that the drive's decisions can be read from outside
 * (`callproof audit <file>`).
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { importPKCS8 } from 'jose'
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
  mail?: string
  'mail-client'?: string
  'mail-key'?: string
  sdk?: string
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
      mail: { type: 'string' },
      'mail-client': { type: 'string' },
      'mail-key': { type: 'string' },
      sdk: { type: 'string' },
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
if (values.sdk !== undefined && values.sdk !== 'v1' && values.sdk !== 'v2') {
  fail(`--sdk must be v1 or v2, got ${JSON.stringify(values.sdk.slice(0, 20))}`)
}
const sdk = values.sdk as 'v1' | 'v2' | undefined

let mail: { url: string; clientId: string; clientKey: CryptoKey } | undefined
if (values.mail !== undefined) {
  if (!URL.canParse(values.mail)) fail(`--mail ${values.mail} is not an absolute URL`)
  if (values['mail-client'] === undefined || values['mail-key'] === undefined) {
    fail('--mail needs --mail-client <client id> and --mail-key <PKCS #8 PEM file>')
  }
  try {
    const pem = readFileSync(values['mail-key'], 'utf8')
    mail = {
      url: values.mail,
      clientId: values['mail-client'],
      clientKey: (await importPKCS8(pem, 'ES256')) as CryptoKey,
    }
  } catch (error) {
    fail(`--mail-key: ${error instanceof Error ? error.message : String(error)}`)
  }
} else if (values['mail-client'] !== undefined || values['mail-key'] !== undefined) {
  fail('--mail-client and --mail-key need --mail <url>')
}

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
    ...(mail !== undefined ? { mail } : {}),
    ...(sdk !== undefined ? { sdk } : {}),
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
