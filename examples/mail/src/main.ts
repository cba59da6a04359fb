/**
 * Starts the mail API on 127.0.0.1:
 *
 *     npm run start -w @callproof/example-mail -- --issuer <authorization server URL> --actor <MCP server client id> [--port <port>]
 *
 * It accepts only tokens for itself (`aud` = `http://127.0.0.1:<port>/`) that name one of the
 * `--actor` client ids in `act`, bound to the key of a fresh DPoP proof. Repeat `--actor` for
 * several MCP servers.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { startMail } from './index.js'

function fail(message: string): never {
  process.stderr.write(`mail: ${message}\n`)
  process.exit(2)
}

let values: { issuer?: string; port?: string; actor?: string[] }
try {
  ;({ values } = parseArgs({
    options: {
      issuer: { type: 'string' },
      port: { type: 'string' },
      actor: { type: 'string', multiple: true },
    },
    strict: true,
    allowPositionals: false,
  }))
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
if (values.issuer === undefined || !URL.canParse(values.issuer)) {
  fail('--issuer <authorization server URL> is required')
}
if (values.actor === undefined || values.actor.length === 0) {
  fail('--actor <MCP server client id> is required (the servers that may send for a user)')
}
const port = values.port === undefined ? 0 : Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port} is not a port`)

try {
  const mail = await startMail({ issuer: values.issuer, actors: values.actor, port })
  process.stdout.write(`mail API listening on ${mail.origin} (resource ${mail.resource})\n`)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void mail.close().then(() => process.exit(0)))
  }
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
