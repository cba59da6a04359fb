// `callproof bridge` as an MCP client launches it: its own Node process on stdio (from the
// sources, as a user runs it from a checkout), driven by the official SDK v1 client.
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ClientCapabilities, JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

export const packageDir = fileURLToPath(new URL('../..', import.meta.url))

/** The command line that starts the bridge from the sources. */
export function bridgeCommandLine(args: string[]): { command: string; args: string[] } {
  return {
    command: process.execPath,
    args: ['--conditions=@callproof/source', '--import', 'tsx', 'src/bin.ts', 'bridge', ...args],
  }
}

/** A stdio bridge with the SDK's own client connected to it, and what it wrote on stderr. */
export async function stdioBridge(
  args: string[],
  capabilities: ClientCapabilities = {},
): Promise<{ client: Client; stderr: () => string; errors: Error[]; close(): Promise<void> }> {
  const transport = new StdioClientTransport({
    ...bridgeCommandLine(args),
    cwd: packageDir,
    env: { ...(process.env as Record<string, string>), NO_COLOR: '1' },
    stderr: 'pipe',
  })
  let stderr = ''
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
  const client = new Client({ name: 'sdk-v1-test-client', version: '1.0.0' }, { capabilities })
  // Anything on stdout that is not a JSON-RPC message would surface here.
  const errors: Error[] = []
  client.onerror = (error) => errors.push(error)
  await client.connect(transport)
  return { client, stderr: () => stderr, errors, close: () => client.close() }
}

/**
 * An SDK client on a pair of in-memory streams, for `bridgeCommand` run in this process: the
 * stdin it reads and the stdout it writes, newline-delimited JSON-RPC as on a real pipe.
 */
export function streamClient(): {
  client: Client
  transport: Transport
  stdin: PassThrough
  stdout: PassThrough
} {
  const stdin = new PassThrough()
  const stdout = new PassThrough()
  const buffer = new ReadBuffer()
  const transport: Transport = {
    start: () => {
      stdout.on('data', (chunk: Buffer) => {
        buffer.append(chunk)
        // A line that is not a JSON-RPC message throws here and fails the test.
        for (let m = buffer.readMessage(); m !== null; m = buffer.readMessage()) {
          transport.onmessage?.(m)
        }
      })
      return Promise.resolve()
    },
    send: (message: JSONRPCMessage) => {
      stdin.write(serializeMessage(message))
      return Promise.resolve()
    },
    close: () => {
      // The MCP client goes away: the bridge sees the end of its stdin.
      stdin.end()
      transport.onclose?.()
      return Promise.resolve()
    },
  }
  const client = new Client({ name: 'in-process', version: '1.0.0' })
  return { client, transport, stdin, stdout }
}
