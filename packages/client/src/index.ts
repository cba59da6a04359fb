/**
 * `@callproof/client`: the MCP client side of callproof. A key that never leaves the process,
 * DPoP-bound OAuth 2.1 through oauth4webapi, a proof bound to every single call, and server
 * challenges (nonce, scope, step-up, per-call approval) answered by itself.
 *
 * @example
 * ```ts
 * import { connect, systemBrowserInteraction } from '@callproof/client'
 * const client = await connect('https://drive.example/mcp', { interaction: systemBrowserInteraction() })
 * await client.callTool({ name: 'list_files', arguments: {} })
 * ```
 * @packageDocumentation
 */

export * from './api.js'
export { connect } from './connect.js'
