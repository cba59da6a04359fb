import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createCallproofFetch, type ConnectOptions } from '../../src/index.js'

/** A connected SDK client plus the session behind it, for tests that look inside. */
export async function open(url: string, options: ConnectOptions) {
  const { fetch, session } = await createCallproofFetch(url, options)
  const client = new Client({ name: 'callproof-test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch }))
  return { client, session, fetch }
}

export function text(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content ?? []
  return content.map((c) => c.text ?? '').join('')
}

export function isError(result: unknown): boolean {
  return (result as { isError?: boolean }).isError === true
}
