/**
 * The server a user would write instead of callproof on the MCP SDK v2 line: the SDK v2's own
 * idiomatic stateful server (`@modelcontextprotocol/server` 2.x), as its documentation shows it
 * for 2025-11-25 clients — one `McpServer` and one Streamable HTTP transport per session, created
 * at `initialize` and reused for every later request, JSON responses, no authentication. The
 * v2 rows of `npm run bench`'s second table are measured against it, as ./stateful.ts is for v1.
 *
 * It serves the drive's `read_file` (the tool the benchmark calls), with the drive's own code.
 */
import type { Hono } from 'hono'
import { z } from 'zod'
import {
  McpServer,
  WebStandardStreamableHTTPServerTransport,
  isInitializeRequest,
} from '@modelcontextprotocol/server'
import type { Drives } from '@callproof/example-drive'
import { statefulApp } from './stateful.js'

function driveServer(drives: Drives): McpServer {
  const server = new McpServer({ name: 'drive', version: '0.0.0' })
  server.registerTool(
    'read_file',
    { description: 'Read a file from your drive.', inputSchema: z.object({ path: z.string() }) },
    ({ path }) => {
      const content = drives.read('alice', path)
      return content === undefined
        ? { content: [{ type: 'text', text: `no such file: ${path}` }], isError: true }
        : { content: [{ type: 'text', text: content }] }
    },
  )
  return server
}

/** The drive's `read_file` on the SDK v2's idiomatic stateful server (a transport per session). */
export function statefulSdkV2App(drives: Drives): Hono {
  return statefulApp(isInitializeRequest, async (onSession) => {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: onSession,
    })
    await driveServer(drives).connect(transport)
    return transport
  })
}
