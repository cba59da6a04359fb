/**
 * `createCallproof`: the pipeline (pipeline.ts) over an MCP SDK seam (sdk/v1.ts by default; sdk/v2.ts
 * through `@callproof/server/v2`), as a Hono
 * middleware and a framework-neutral handler, with the RFC 9728 metadata route.
 *
 * This file only adapts: the options are checked in options.ts, the request's path lives in
 * pipeline.ts, and the SDK is reached through its seam.
 *
 * @module
 */
import { createMiddleware } from 'hono/factory'
import type { Context, Env, Hono, MiddlewareHandler } from 'hono'
import type { Caller, VerifiedCall } from '@callproof/core'
import type { IssuerKeys } from './issuer.js'
import { metadataResponse } from './metadata.js'
import type { ProtectedResourceMetadata } from './metadata.js'
import { configure } from './options.js'
import type { CallproofConfig, CallproofOptions } from './options.js'
import { nodeBodySource, nodeHeaders, nodeIncomingOf } from './node.js'
import { createPipeline } from './pipeline.js'
import type { McpSeam } from './sdk/seam.js'
import { createSdkV1Seam } from './sdk/v1.js'

/** Hono environment of the callproof middleware: read the verified caller as `c.var.caller`. */
export interface CallproofEnv {
  Variables: {
    /** The verified caller of this request. */
    caller: Caller
    /** The whole verified call (token, proof, binding, parsed message). */
    call: VerifiedCall
    /** The id of this request in audit events and the `x-request-id` header. */
    requestId: string
  }
}

/** What {@link createCallproof} returns. */
export interface Callproof {
  /** The middleware for the MCP endpoint. It answers every request itself. */
  readonly middleware: MiddlewareHandler<CallproofEnv>
  /**
   * The MCP endpoint as a plain `Request → Response` function, for any framework or runtime
   * (`Bun.serve`, `Deno.serve`, `@hono/node-server`, a Worker). It never throws.
   */
  readonly handle: (request: Request) => Promise<Response>
  /**
   * The metadata route and the MCP endpoint together: answers the RFC 9728 document at
   * {@link metadataPath}, the endpoint at {@link resourcePath}, and 404 for any other path.
   */
  readonly fetch: (request: Request) => Promise<Response>
  /** A handler serving the RFC 9728 document. */
  readonly metadataHandler: (c: Context) => Response
  /** The RFC 9728 document. */
  readonly metadata: ProtectedResourceMetadata
  /** Where the document is served (path-inserted from the resource path). */
  readonly metadataPath: string
  /** The absolute URL challenges name in `resource_metadata`. */
  readonly metadataUrl: string
  /** The resource URI. */
  readonly resource: string
  /** The path of the resource URI (`/mcp`): where to mount the middleware. */
  readonly resourcePath: string
  /** The issuers' keys and metadata. */
  readonly issuerKeys: IssuerKeys
  /** Adds the metadata route and the MCP endpoint to `app`. */
  mount<E extends Env>(app: Hono<E>): void
}

/**
 * Creates the callproof middleware. Every option is checked here: a misconfiguration throws a
 * `CallproofError` `ERR_INVALID_OPTIONS` at start-up instead of failing on the first request.
 *
 * @example
 * ```ts
 * const tools = createToolRegistry({ name: 'drive', version: '1.0.0' })
 * tools.register('whoami', { policy: { public: true } }, (extra) => ({
 *   content: [{ type: 'text', text: callerOf(extra).sub }],
 * }))
 * const callproof = createCallproof({
 *   resource: 'http://127.0.0.1:3000/mcp',
 *   issuers: 'http://127.0.0.1:4000',
 *   tools,
 * })
 * const app = new Hono()
 * callproof.mount(app) // GET /.well-known/oauth-protected-resource/mcp + ALL /mcp
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function createCallproof(options: CallproofOptions): Callproof {
  return createCallproofOn(options, (config) => createSdkV1Seam(config.tools, config))
}

/**
 * {@link createCallproof} over the MCP SDK seam that `seamFor` builds from the checked
 * configuration: the one place the SDK line is chosen (`@callproof/server` picks v1,
 * `@callproof/server/v2` picks v2; everything else is the same).
 */
export function createCallproofOn(
  options: CallproofOptions,
  seamFor: (config: CallproofConfig) => McpSeam,
): Callproof {
  const config = configure(options)
  const pipeline = createPipeline(config, seamFor(config))
  const { metadata, metadataPath, resourcePath } = config

  const middleware = createMiddleware<CallproofEnv>(async (c) => {
    const incoming = nodeIncomingOf(c.env)
    return pipeline.handle(c.req.raw, {
      onRequestId: (requestId) => c.set('requestId', requestId),
      onVerified: (call) => {
        c.set('caller', call.caller)
        c.set('call', call)
      },
      ...(incoming !== undefined && {
        body: nodeBodySource(incoming),
        headers: nodeHeaders(incoming),
      }),
    })
  })

  const handle = (request: Request) => pipeline.handle(request)

  return {
    middleware,
    handle,
    async fetch(request) {
      const path = new URL(request.url).pathname
      if (path === metadataPath && (request.method === 'GET' || request.method === 'HEAD')) {
        return metadataResponse(metadata)
      }
      if (path === resourcePath) return handle(request)
      return new Response('Not Found', { status: 404 })
    },
    metadataHandler: () => metadataResponse(metadata),
    metadata,
    metadataPath,
    metadataUrl: config.metadataUrl,
    resource: config.resource,
    resourcePath,
    issuerKeys: config.issuerKeys,
    mount(app) {
      app.get(metadataPath, () => metadataResponse(metadata))
      app.all(resourcePath, middleware as unknown as MiddlewareHandler<Env>)
    },
  }
}
