/**
 * `@callproof/server/v2`: callproof on the MCP TypeScript SDK v2 (`@modelcontextprotocol/server`
 * 2.x), serving MCP 2026-07-28 and 2025-11-25 as the SDK negotiates them. The same API as
 * `@callproof/server` — the same registry, policies, options and answers — with one import
 * changed; only {@link createCallproof} differs, building the pipeline over the v2 seam.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { z } from 'zod'
 * import { callerOf, createCallproof, createToolRegistry } from '@callproof/server/v2'
 *
 * const tools = createToolRegistry({ name: 'notes', version: '1.0.0' })
 * tools.register(
 *   'read_note',
 *   { inputSchema: { id: z.string() }, policy: { scopes: ['notes:read'] } },
 *   ({ id }, ctx) => ({ content: [{ type: 'text', text: `${callerOf(ctx).sub}: ${id}` }] }),
 * )
 * const callproof = createCallproof({ resource: 'https://notes.example/mcp', issuers: 'https://as.example', tools })
 * const app = new Hono()
 * callproof.mount(app)
 * ```
 * @module
 */
import { createCallproofOn } from './middleware.js'
import type { Callproof } from './middleware.js'
import type { CallproofOptions } from './options.js'
import { createSdkV2Seam } from './sdk/v2.js'

export * from './index.js'

/** `@callproof/server`'s options, plus what only the SDK v2 line has. */
export interface CallproofV2Options extends CallproofOptions {
  /**
   * The key (32 bytes or more) that seals Multi Round-Trip continuations to their caller and call
   * (sdk/continuations.ts). Instances that may receive each other's continuations share it;
   * default: a random key per process.
   */
  continuationKey?: Uint8Array
  /** How long a continuation may be used, in seconds (default 600). */
  continuationTtlSeconds?: number
}

/**
 * Creates the callproof middleware over the MCP SDK v2: `@callproof/server`'s `createCallproof`,
 * with the SDK v2 seam (sdk/v2.ts) behind the pipeline.
 */
export function createCallproof(options: CallproofV2Options): Callproof {
  const { continuationKey, continuationTtlSeconds, ...common } = options
  const continuations = {
    ...(continuationKey !== undefined && { key: continuationKey }),
    ...(continuationTtlSeconds !== undefined && { ttlSeconds: continuationTtlSeconds }),
  }
  return createCallproofOn(common, (config) =>
    createSdkV2Seam(config.tools, {
      ...config,
      continuations: { ...continuations, clock: config.clock },
    }),
  )
}
