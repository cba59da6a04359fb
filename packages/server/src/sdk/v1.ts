/**
 * The seam to the MCP TypeScript SDK v1 (`@modelcontextprotocol/sdk`): the one module that
 * builds SDK servers and transports.
 *
 * **Why servers are reused, and why that is safe.** Building an `McpServer`, registering every
 * tool and connecting it costs several times a signature check, so servers are kept in a pool
 * and reused across requests and callers. Three rules keep a reused server from carrying one
 * caller's state into another caller's request:
 *
 * 1. A server serves one request at a time. Each request gets its own stateless transport,
 *    connected for that request and closed after it, so JSON-RPC ids of different callers never
 *    meet in one server (the SDK routes answers by id).
 * 2. Every pooled server holds every tool. What a caller may see is decided per request: the
 *    pipeline refuses a call to a tool the caller can never be granted before the SDK runs, and
 *    `tools/list` is answered by a handler that reads this request's caller (from the
 *    `authInfo` the transport hands it) and lists only that caller's tools.
 * 3. A server that ran `initialize`, or that a registry's `setup(server, caller)` hook shaped for
 *    one caller, is never pooled: `initialize` leaves the client's capabilities in the server,
 *    and `setup` may leave anything. So is a server answering with an SSE stream, which lives as
 *    long as its stream.
 *
 * Because the SDK runs statelessly per request, any instance can serve any request of a
 * session: sessions are callproof's own (sessions.ts), bound to the caller.
 *
 * @module
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import {
  ListToolsRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js'
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { ListToolsResult, Tool } from '@modelcontextprotocol/sdk/types.js'
import type { ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import { CallproofError } from '@callproof/core'
import type { Caller } from '@callproof/core'
import { authInfoFor, listingFor, registrationsOf } from '../tools.js'
import type { ToolRegistry } from '../tools.js'
import type { McpExecution, McpSeam } from './seam.js'

/** Options of {@link createSdkV1Seam}. */
export interface SdkV1SeamOptions {
  /** The resource URI (handed to tools in `authInfo.resource`, and to the listing). */
  readonly resource: string
  /** Answer with JSON (true) or an SSE stream. */
  readonly jsonResponse: boolean
  /** Idle servers kept for reuse (default 64: more than the requests in flight on one core). */
  readonly maxIdleServers?: number
}

/** What the `tools/list` handler of a shared server needs to know about this request. */
interface ListingRequest {
  readonly caller: Caller
  readonly now: number
}

/**
 * One JSON Schema validator for every server: the SDK's `Server` constructor otherwise builds a
 * new Ajv (with its formats) each time. Ajv keeps no per-request state. (It caches what it
 * compiles by schema object; the SDK server compiles only elicitation schemas, so a tool that
 * elicits should reuse its schema objects.)
 */
const validator = new AjvJsonSchemaValidator()

/**
 * The MCP SDK v1 behind the pipeline, serving `tools`.
 *
 * @example
 * ```ts
 * const seam = createSdkV1Seam(tools, { resource, jsonResponse: true })
 * const response = await seam.execute({ request, call, accessToken, now: Date.now() })
 * ```
 */
export function createSdkV1Seam(tools: ToolRegistry, options: SdkV1SeamOptions): McpSeam {
  const { resource, jsonResponse } = options
  const maxIdle = options.maxIdleServers ?? 64
  const registrations = registrationsOf(tools)
  // Keyed by the very `authInfo` object the transport passes to the handler's `extra`.
  const listings = new WeakMap<AuthInfo, ListingRequest>()
  let idle: McpServer[] = []
  let builtFor = -1
  let descriptors: Promise<ReadonlyMap<string, Tool>> | undefined

  /** A server with every registered tool, whose `tools/list` answers for the request's caller. */
  function build(): McpServer {
    const server = new McpServer(registrations.info, {
      capabilities: { tools: {} },
      jsonSchemaValidator: validator,
    })
    for (const { name, config, callback } of registrations.entries.values()) {
      const { policy: _policy, ...sdkConfig } = config
      server.registerTool(
        name,
        sdkConfig as Parameters<McpServer['registerTool']>[1],
        callback as ToolCallback<ZodRawShapeCompat>,
      )
    }
    server.server.setRequestHandler(ListToolsRequestSchema, async (_request, extra) => {
      const listing = extra.authInfo !== undefined ? listings.get(extra.authInfo) : undefined
      // Only callproof's pipeline hands requests to this server, always with a listing.
      if (listing === undefined) throw new Error('tools/list without a verified caller')
      return listFor(listing)
    })
    return server
  }

  async function listFor({ caller, now }: ListingRequest): Promise<ListToolsResult> {
    const described = await describedTools()
    return {
      tools: listingFor(tools, caller, { resource, now }).map(({ name, meta }) => ({
        ...described.get(name)!,
        _meta: meta,
      })),
    }
  }

  /**
   * Every tool as the SDK lists it (JSON Schemas from the registered schemas), asked of the SDK
   * once per set of registrations: the SDK, not this module, decides how a tool is described.
   */
  function describedTools(): Promise<ReadonlyMap<string, Tool>> {
    refreshIfRegistrationsChanged()
    descriptors ??= (async () => {
      const server = new McpServer(registrations.info, {
        capabilities: { tools: {} },
        jsonSchemaValidator: validator,
      })
      for (const { name, config, callback } of registrations.entries.values()) {
        const { policy: _policy, _meta: _ignored, ...sdkConfig } = config
        server.registerTool(
          name,
          sdkConfig as Parameters<McpServer['registerTool']>[1],
          callback as ToolCallback<ZodRawShapeCompat>,
        )
      }
      const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true })
      await server.connect(transport)
      const answer = await transport.handleRequest(
        new Request(resource, {
          method: 'POST',
          headers: {
            accept: 'application/json, text/event-stream',
            'content-type': 'application/json',
          },
          body: '{}',
        }),
        { parsedBody: { jsonrpc: '2.0', id: 0, method: 'tools/list' } },
      )
      const { result } = (await answer.json()) as { result?: ListToolsResult }
      await server.close()
      if (result === undefined) throw new Error('the MCP SDK did not list the registered tools')
      return new Map(result.tools.map((tool) => [tool.name, tool]))
    })()
    return descriptors
  }

  function refreshIfRegistrationsChanged(): void {
    if (builtFor === registrations.version) return
    builtFor = registrations.version
    idle = []
    descriptors = undefined
  }

  function acquire(): McpServer {
    refreshIfRegistrationsChanged()
    return idle.pop() ?? build()
  }

  /**
   * Closes a server whose request is answered and, when `version` is given, returns it to the
   * pool. On the next turn of the event loop, not now: the SDK forgets a finished request a few
   * promise callbacks after the answer is handed over, and closing before that aborts the
   * request's signal (a `DOMException` per call, a few per cent of a call's CPU). The answer
   * does not wait for it.
   */
  function retire(server: McpServer, version: number | undefined): void {
    nextTurn(() => {
      server.close().then(
        () => {
          if (version === registrations.version && idle.length < maxIdle) idle.push(server)
        },
        () => undefined,
      )
    })
  }

  return {
    refusal: transportRefusal,
    async execute({ request, call, accessToken, now }: McpExecution): Promise<Response> {
      const authInfo = authInfoFor(call.caller, accessToken, call.token.claims.exp, resource)
      listings.set(authInfo, { caller: call.caller, now })
      const setup = registrations.options.setup
      const shared = jsonResponse && setup === undefined && !isInitialize(call.message)
      const version = registrations.version
      const server = shared ? acquire() : build()
      if (!shared) setup?.(server, call.caller)
      const transport = new WebStandardStreamableHTTPServerTransport({
        enableJsonResponse: jsonResponse,
      })
      await server.connect(transport)
      let response: Response
      try {
        response = await transport.handleRequest(request, { parsedBody: call.message, authInfo })
      } catch (error) {
        // A server whose request failed half-way is not trusted with another request.
        await server.close().catch(() => undefined)
        throw error
      }
      // A JSON answer is complete here: the handler has returned. An SSE answer is still being
      // written; its server lives as long as its stream and is never reused.
      if (jsonResponse) retire(server, shared ? version : undefined)
      return response
    },
  }
}

/**
 * What `WebStandardStreamableHTTPServerTransport.handlePostRequest` refuses before it runs a
 * message, with the same tests the SDK uses (its media-type parser, its list of versions).
 */
function transportRefusal(request: Request, message: unknown): CallproofError | undefined {
  const accept = request.headers.get('accept') ?? ''
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    return new CallproofError(
      'ERR_NOT_ACCEPTABLE',
      'Accept must list both application/json and text/event-stream (MCP Streamable HTTP)',
    )
  }
  if (!isJsonContentType(request.headers.get('content-type'))) {
    return new CallproofError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')
  }
  // Like the SDK: `initialize` negotiates its version in the body; every later request names it.
  const version = isInitialize(message) ? null : request.headers.get('mcp-protocol-version')
  if (version !== null && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    return new CallproofError(
      'ERR_UNSUPPORTED_PROTOCOL_VERSION',
      `MCP-Protocol-Version ${version.slice(0, 40)} is not supported (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
    )
  }
  return undefined
}

/** The next turn of the event loop, after every pending promise callback. */
const nextTurn: (callback: () => void) => void =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)

function isInitialize(message: unknown): boolean {
  return (message as { method?: unknown } | undefined)?.method === 'initialize'
}
