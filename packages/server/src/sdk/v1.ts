/**
 * The seam to the MCP TypeScript SDK v1 (`@modelcontextprotocol/sdk`): the one module that
 * builds SDK servers and transports.
 *
 * **Why servers are reused, and why that is safe.** Building an `McpServer`, registering every
 * tool and connecting it costs several times a signature check, so servers are kept in a pool
 * and reused across requests and callers. Four rules keep a reused server from carrying one
 * caller's state into another caller's request:
 *
 * 1. A server serves one request at a time, so JSON-RPC ids of different callers never meet in
 *    one server (the SDK routes answers by id). A pooled server keeps one transport of our own
 *    (`direct.ts`) for its whole life: it hands the server one verified message and returns the
 *    answer to that message's id, and only that. (A server that streams its answer, below, gets
 *    the SDK's Streamable HTTP transport, connected for that request and closed after it.)
 * 2. Every pooled server holds every tool, prompt and resource. What a caller may see is decided
 *    per request: the pipeline refuses a call the caller can never be granted before the SDK
 *    runs, and every listing (`tools/list`, `prompts/list`, `resources/list`,
 *    `resources/templates/list`) is answered by a handler that reads this request's caller
 *    (from the `authInfo` the transport hands it) and lists only what that caller may see.
 *    `resources/read` is answered by our handler too, which finds the resource with the very
 *    function the pipeline decided with (tools.ts `resolveResource`).
 * 3. A server that ran `initialize`, or that a registry's `setup(server, caller)` hook shaped for
 *    one caller, is never pooled: `initialize` leaves the client's capabilities in the server,
 *    and `setup` may leave anything. So is a server answering with an SSE stream, which lives as
 *    long as its stream.
 * 4. No caller state is left in a server: `logging/setLevel` is answered by our handler, which
 *    keeps the level of the caller's own session here (not in the SDK server, which keeps one
 *    per server instance), and each request's transport drops the log notifications below it.
 *
 * **What reaches a caller outside its own request**, and only that caller:
 *
 * 5. A request a server sends to the client (sampling, elicitation, roots) leaves with an id of
 *    our own, unguessable and never reused, and its answer — a POST whose proof binds
 *    `{ response: <that id> }` — is delivered to the server that asked only when it comes from
 *    the same caller (subject, client, key) on the same session, once. Any other answer is
 *    accepted (202, as for every response POST) and delivered nowhere, the same whether the id
 *    is unknown or someone else's: another caller cannot answer, or learn of, a request sent to
 *    someone else.
 * 6. A verified GET on the caller's own session opens that session's standalone stream, which
 *    alone receives what belongs to no request: `notifications/resources/updated` for the
 *    session's own subscriptions (`resources/subscribe`, decided by the URI's policy like a
 *    read). It closes when the token that opened it stops being accepted.
 *
 * 7. A `notifications/cancelled` reaches the request it names only when that request is the
 *    caller's own, on the same session and still running; progress notifications travel on the
 *    response stream of the request that carries the `progressToken`, which is its caller's.
 *
 * Logging levels, subscriptions and streams are keyed by the caller (subject, client, key) and
 * the session id, so a session id the pipeline did not check (stateless mode) can only ever name
 * the caller's own state.
 *
 * Because the SDK runs statelessly per request, any instance can serve any request of a
 * session (sessions are callproof's own, sessions.ts, bound to the caller), except what lives in
 * this process: answers to server requests, logging levels, subscriptions and standalone streams
 * (docs/protocol.md §15.2 says what a deployment with several instances must do).
 *
 * @module
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import type {
  ListResourcesCallback,
  PromptCallback,
  ToolCallback,
} from '@modelcontextprotocol/sdk/server/mcp.js'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import {
  ErrorCode,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingLevelSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type {
  JSONRPCMessage,
  ListPromptsResult,
  ListResourcesResult,
  ListToolsResult,
  LoggingLevel,
  Prompt,
  Resource,
  Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import { CallproofError } from '@callproof/core'
import type { Caller } from '@callproof/core'
import {
  authInfoFor,
  isVisible,
  listingFor,
  registrationsOf,
  resolveResource,
  visibleTo,
  POLICY_META_KEY,
} from '../tools.js'
import type { ToolRegistry } from '../tools.js'
import { lazyRequestInfo } from './direct.js'
import { ACCEPTED, createServerPool } from './pool.js'
import type { RequestHeaders } from '../node.js'
import type { McpAnswer, McpExecution, McpSeam } from './seam.js'
import { ServerRequests } from './server-requests.js'
import { Streams, Subscriptions } from './streams.js'

/** Options of {@link createSdkV1Seam}. */
export interface SdkV1SeamOptions {
  /** The resource URI (handed to tools in `authInfo.resource`, and to the listing). */
  readonly resource: string
  /** Answer with JSON (true) or an SSE stream. */
  readonly jsonResponse: boolean
  /** Idle servers kept for reuse (default 64: more than the requests in flight on one core). */
  readonly maxIdleServers?: number
}

/** What the handlers of a shared server need to know about this request. */
interface ListingRequest {
  readonly caller: Caller
  readonly now: number
  /**
   * The caller's own session (subject, client, key and session id): where its logging level,
   * subscriptions and standalone stream live; `undefined` outside any session.
   */
  readonly sessionKey: string | undefined
  /** When the token of this request stops being accepted (ms): its subscriptions end then. */
  readonly acceptedUntil: number
}

/** Logging levels kept (one per caller session that set one); the oldest is forgotten first. */
const MAX_LEVELS = 10_000
const LEVELS = LoggingLevelSchema.options

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
  const registrations = registrationsOf(tools)
  // Keyed by the very `authInfo` object the transport passes to the handler's `extra`.
  const listings = new WeakMap<AuthInfo, ListingRequest>()
  const serverRequests = new ServerRequests()
  // The requests still running, by caller, session and JSON-RPC id (rule 7): how to cancel each.
  const running = new Map<string, (cancellation: JSONRPCMessage) => void>()
  const streams = new Streams()
  const subscriptions = new Subscriptions()
  registrations.updates.add((uri) => {
    for (const sessionKey of subscriptions.of(uri, Date.now())) {
      streams.send(sessionKey, {
        jsonrpc: '2.0',
        method: 'notifications/resources/updated',
        params: { uri },
      })
    }
  })
  // The logging level of each caller session that set one (rule 4).
  const levels = new Map<string, LoggingLevel>()
  // Rule 1: servers for JSON answers, reused (pool.ts).
  const pool = createServerPool({
    build: () => build(),
    version: () => registrations.version,
    onRefresh: () => {
      descriptors = undefined
      promptDescriptors = undefined
    },
    ...(options.maxIdleServers !== undefined && { maxIdle: options.maxIdleServers }),
  })
  let descriptors: Promise<ReadonlyMap<string, Tool>> | undefined
  let promptDescriptors: Promise<ReadonlyMap<string, Prompt>> | undefined

  /** The listing of this request (only callproof's pipeline hands requests to these servers). */
  function listingOf(extra: { authInfo?: AuthInfo | undefined }): ListingRequest {
    const listing = extra.authInfo !== undefined ? listings.get(extra.authInfo) : undefined
    if (listing === undefined) throw new Error('a request without a verified caller')
    return listing
  }

  /**
   * A server with every registered primitive, whose listings, reads and logging level answer
   * for the request's caller.
   */
  function build(): McpServer {
    const server = bareServer(true)
    const { resources, templates, prompts } = registrations
    server.server.setRequestHandler(ListToolsRequestSchema, async (_request, extra) =>
      listFor(listingOf(extra)),
    )
    if (prompts.size > 0) {
      server.server.setRequestHandler(ListPromptsRequestSchema, async (_request, extra) =>
        listPromptsFor(listingOf(extra)),
      )
    }
    if (resources.size > 0 || templates.size > 0) {
      server.server.setRequestHandler(ListResourcesRequestSchema, async (_request, extra) =>
        listResourcesFor(listingOf(extra), extra),
      )
      server.server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_r, extra) => {
        const listing = listingOf(extra)
        return {
          resourceTemplates: visibleTo(tools, templates.values(), (t) => t.name, listing.caller, {
            resource,
            now: listing.now,
          }).map(({ entry, meta }) => ({
            name: entry.name,
            uriTemplate: entry.template.toString(),
            ...metadataOf(entry.config),
            _meta: meta,
          })),
        }
      })
      server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } })
      // Decided by the URI's policy in the pipeline, like a read; kept for this caller's own
      // session, whose standalone stream alone hears of updates.
      server.server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
        const { sessionKey, acceptedUntil } = listingOf(extra)
        if (sessionKey === undefined) {
          throw new McpError(ErrorCode.InvalidRequest, 'resources/subscribe needs a session')
        }
        subscriptions.add(new URL(request.params.uri).href, sessionKey, acceptedUntil)
        return {}
      })
      server.server.setRequestHandler(UnsubscribeRequestSchema, async (request, extra) => {
        const { sessionKey } = listingOf(extra)
        if (sessionKey !== undefined) {
          subscriptions.remove(new URL(request.params.uri).href, sessionKey)
        }
        return {}
      })
      server.server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
        listingOf(extra)
        // The very lookup the pipeline decided with: the policy checked is this resource's.
        const found = resolveResource(tools, request.params.uri)
        if (found === undefined) {
          throw new McpError(ErrorCode.InvalidParams, 'Resource not found')
        }
        const uri = new URL(request.params.uri)
        return 'variables' in found
          ? found.entry.read(uri, found.variables, extra)
          : found.entry.read(uri, extra)
      })
    }
    if (registrations.options.logging === true) {
      server.server.setRequestHandler(SetLevelRequestSchema, async (request, extra) => {
        const { sessionKey } = listingOf(extra)
        if (sessionKey !== undefined) {
          levels.delete(sessionKey)
          levels.set(sessionKey, request.params.level)
          if (levels.size > MAX_LEVELS) levels.delete(levels.keys().next().value!)
        }
        return {}
      })
    }
    return server
  }

  /**
   * A server with every registration, as the SDK registers them (`withMeta`: with the tools'
   * own `_meta`; the descriptors leave it out, the listing adds it with the policy).
   */
  function bareServer(withMeta: boolean): McpServer {
    const server = new McpServer(registrations.info, {
      capabilities: {
        tools: {},
        ...(registrations.options.logging === true ? { logging: {} } : {}),
      },
      jsonSchemaValidator: validator,
    })
    for (const { name, config, callback } of registrations.entries.values()) {
      const { policy: _policy, _meta, ...sdkConfig } = config
      server.registerTool(
        name,
        (withMeta && _meta !== undefined ? { ...sdkConfig, _meta } : sdkConfig) as Parameters<
          McpServer['registerTool']
        >[1],
        callback as ToolCallback<ZodRawShapeCompat>,
      )
    }
    for (const { name, uri, config, read } of registrations.resources.values()) {
      server.registerResource(name, uri, metadataOf(config), read)
    }
    for (const { name, template, config, read } of registrations.templates.values()) {
      const sdkTemplate = new ResourceTemplate(template.toString(), {
        list: config.list,
        ...(config.complete !== undefined ? { complete: config.complete } : {}),
      })
      server.registerResource(name, sdkTemplate, metadataOf(config), read)
    }
    for (const { name, config, callback } of registrations.prompts.values()) {
      const { policy: _policy, ...sdkConfig } = config
      server.registerPrompt(
        name,
        sdkConfig as Parameters<McpServer['registerPrompt']>[1],
        callback as PromptCallback<ZodRawShapeCompat>,
      )
    }
    return server
  }

  async function listPromptsFor({ caller, now }: ListingRequest): Promise<ListPromptsResult> {
    const described = await describedPrompts()
    return {
      prompts: visibleTo(tools, registrations.prompts.values(), (p) => p.name, caller, {
        resource,
        now,
      }).map(({ entry, meta }) => ({ ...described.get(entry.name)!, _meta: meta })),
    }
  }

  async function listResourcesFor(
    listing: ListingRequest,
    extra: Parameters<ListResourcesCallback>[0],
  ): Promise<ListResourcesResult> {
    const context = { resource, now: listing.now }
    const listed: Resource[] = visibleTo(
      tools,
      registrations.resources.values(),
      (r) => r.uri,
      listing.caller,
      context,
    ).map(({ entry, meta }) => ({
      uri: entry.uri,
      name: entry.name,
      ...metadataOf(entry.config),
      _meta: meta,
    }))
    for (const template of registrations.templates.values()) {
      if (template.config.list === undefined) continue
      const result = await template.config.list(extra)
      for (const item of result.resources) {
        // Listed under the policy of what its URI resolves to: what a read would be decided by.
        const policy = resolveResource(tools, item.uri)?.entry.config.policy
        if (policy === undefined || !isVisible(tools, policy, listing.caller)) continue
        const shown = visibleTo(
          tools,
          [{ config: { policy } }],
          () => item.uri,
          listing.caller,
          context,
        )
        listed.push({
          ...metadataOf(template.config),
          ...item,
          _meta: { ...item._meta, [POLICY_META_KEY]: shown[0]?.meta[POLICY_META_KEY] },
        })
      }
    }
    return { resources: listed }
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
    descriptors ??= askSdk<ListToolsResult>('tools/list').then(
      (result) => new Map(result.tools.map((tool) => [tool.name, tool])),
    )
    return descriptors
  }

  /** Every prompt as the SDK lists it (its arguments from the registered schema), likewise. */
  function describedPrompts(): Promise<ReadonlyMap<string, Prompt>> {
    refreshIfRegistrationsChanged()
    promptDescriptors ??= askSdk<ListPromptsResult>('prompts/list').then(
      (result) => new Map(result.prompts.map((prompt) => [prompt.name, prompt])),
    )
    return promptDescriptors
  }

  /** Asks a server with every registration, and no caller, one listing. */
  async function askSdk<T>(method: string): Promise<T> {
    const server = bareServer(false)
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
      { parsedBody: { jsonrpc: '2.0', id: 0, method } },
    )
    const { result } = (await answer.json()) as { result?: T }
    await server.close()
    if (result === undefined) throw new Error(`the MCP SDK did not answer ${method}`)
    return result
  }

  function refreshIfRegistrationsChanged(): void {
    pool.refresh()
  }

  /** Runs a message on a pooled server and answers with JSON (rule 1; cancellable, rule 7). */
  function runPooled(
    message: JSONRPCMessage,
    authInfo: AuthInfo,
    { request, headers }: McpExecution,
    requestKey: string,
  ): Promise<McpAnswer> {
    const id = requestIdOf(message)
    const runningKey = id === undefined ? undefined : JSON.stringify([requestKey, id])
    return pool.run(
      message,
      { authInfo, requestInfo: lazyRequestInfo(request.url, headers) },
      (cancel) => {
        if (runningKey === undefined || running.size >= MAX_RUNNING) return () => undefined
        running.set(runningKey, cancel)
        return () => {
          if (running.get(runningKey) === cancel) running.delete(runningKey)
        }
      },
    )
  }

  /**
   * Closes a server built for one request once it is answered. On the next turn of the event
   * loop, not now: the SDK forgets a finished request a few promise callbacks after the answer
   * is handed over, and closing before that aborts the request's signal (a `DOMException`). The
   * answer does not wait for it.
   */
  function retire(server: McpServer): void {
    nextTurn(() => {
      server.close().catch(() => undefined)
    })
  }

  return {
    refusal: (_request, headers, message) => transportRefusal(headers, message),
    endSession(caller, sessionId) {
      const sessionKey = JSON.stringify([ownerOf(caller), sessionId])
      streams.forget(sessionKey)
      subscriptions.forget(sessionKey)
      levels.delete(sessionKey)
    },
    openStream(caller, sessionId, lastEventId, acceptedUntil) {
      return streams.open(JSON.stringify([ownerOf(caller), sessionId]), lastEventId, acceptedUntil)
    },
    admitAnswer(answer, caller, sessionId) {
      return serverRequests.admits(answer, { owner: ownerOf(caller), sessionId })
    },
    async execute(execution: McpExecution): Promise<Response | McpAnswer> {
      const { request, headers, call, accessToken, now } = execution
      if (isResponse(call.message)) {
        // An answer to a request one of our servers sent: delivered to that server only, and
        // only from the caller and session the request was sent to (rule 5); else nowhere.
        serverRequests.deliver(call.message, {
          owner: ownerOf(call.caller),
          sessionId: headers.get('mcp-session-id'),
        })
        return ACCEPTED
      }
      const requestKey = JSON.stringify([ownerOf(call.caller), headers.get('mcp-session-id')])
      const cancelled = cancelledRequestOf(call.message)
      if (cancelled !== undefined) {
        // A cancellation reaches the caller's own request on the same session, and no other
        // (rule 7); one for anything else goes nowhere, as MCP lets a receiver ignore it.
        const key = JSON.stringify([requestKey, cancelled])
        const target = running.get(key)
        // Once: a cancelled request sends no answer, so it is forgotten here.
        running.delete(key)
        target?.(call.message as JSONRPCMessage)
        return ACCEPTED
      }
      const authInfo = authInfoFor(call.caller, accessToken, call.token.claims.exp, resource)
      const sessionId = headers.get('mcp-session-id')
      // The caller is part of the key: in stateless mode nobody checks whose session id it is.
      const sessionKey =
        sessionId === null ? undefined : JSON.stringify([ownerOf(call.caller), sessionId])
      listings.set(authInfo, {
        caller: call.caller,
        now,
        sessionKey,
        acceptedUntil: call.acceptedUntil,
      })
      const setup = registrations.options.setup
      if (jsonResponse && setup === undefined && !isInitialize(call.message)) {
        return runPooled(call.message as JSONRPCMessage, authInfo, execution, requestKey)
      }
      // Rule 3: a server for this request only (initialize, a `setup` hook, or an SSE answer).
      const server = build()
      setup?.(server, call.caller)
      const transport = new WebStandardStreamableHTTPServerTransport({
        enableJsonResponse: jsonResponse,
      })
      const level = sessionKey !== undefined ? levels.get(sessionKey) : undefined
      const asker = { owner: ownerOf(call.caller), sessionId }
      // While it runs, this request can be cancelled by its own caller on its own session.
      const ownId = requestIdOf(call.message)
      const runningKey = ownId === undefined ? undefined : JSON.stringify([requestKey, ownId])
      const cancel = (cancellation: JSONRPCMessage) => transport.onmessage?.(cancellation)
      if (runningKey !== undefined && running.size < MAX_RUNNING) running.set(runningKey, cancel)
      const done = () => {
        if (runningKey !== undefined && running.get(runningKey) === cancel) {
          running.delete(runningKey)
        }
      }
      const send = transport.send.bind(transport)
      transport.send = (message, options) => {
        if (level !== undefined && belowLevel(message, level)) return Promise.resolve()
        if (!('method' in message) && 'id' in message && message.id === ownId) done()
        return send(serverRequests.outgoing(message, asker, transport), options)
      }
      await server.connect(transport)
      const closed = transport.onclose
      transport.onclose = () => {
        serverRequests.forget(transport)
        done()
        closed?.()
      }
      let response: Response
      try {
        response = await transport.handleRequest(request, { parsedBody: call.message, authInfo })
      } catch (error) {
        done()
        // A server whose request failed half-way is not trusted with another request.
        await server.close().catch(() => undefined)
        throw error
      }
      // A JSON answer is complete here: the handler has returned. An SSE answer is still being
      // written; its server lives as long as its stream and is never reused.
      if (jsonResponse) retire(server)
      return response
    },
  }
}

/** A registration's SDK metadata: everything but callproof's policy and the template callbacks. */
function metadataOf(config: object): Record<string, unknown> {
  const {
    policy: _policy,
    list: _list,
    complete: _complete,
    ...metadata
  } = config as Record<string, unknown>
  return metadata
}

/** A log notification the caller's session asked not to receive. */
function belowLevel(message: JSONRPCMessage, level: LoggingLevel): boolean {
  if (!('method' in message) || message.method !== 'notifications/message') return false
  const sent = (message.params as { level?: unknown } | undefined)?.level
  const rank = LEVELS.indexOf(sent as LoggingLevel)
  return rank !== -1 && rank < LEVELS.indexOf(level)
}

/** Requests tracked for cancellation at most (beyond it, a request cannot be cancelled). */
const MAX_RUNNING = 10_000

/** The id of a request (not a notification, not a response). */
function requestIdOf(message: unknown): string | number | undefined {
  const m = message as { method?: unknown; id?: unknown } | undefined
  return typeof m?.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')
    ? m.id
    : undefined
}

/** The request a `notifications/cancelled` names, if the message is one. */
function cancelledRequestOf(message: unknown): string | number | undefined {
  const m = message as { method?: unknown; id?: unknown; params?: { requestId?: unknown } }
  if (m?.method !== 'notifications/cancelled' || 'id' in m) return undefined
  const id = m.params?.requestId
  return typeof id === 'string' || typeof id === 'number' ? id : undefined
}

/** Subject, client and key: the caller a session and a server request belong to. */
function ownerOf(caller: Caller): string {
  return JSON.stringify([caller.sub, caller.clientId, caller.jkt])
}

/** A JSON-RPC response or error (bindingShape has checked the shape: an id and no method). */
function isResponse(message: unknown): message is { id: string | number } {
  const m = message as Record<string, unknown> | undefined
  return m !== undefined && !('method' in m) && ('result' in m || 'error' in m)
}

/**
 * What `WebStandardStreamableHTTPServerTransport.handlePostRequest` refuses before it runs a
 * message, with the same tests the SDK uses (its media-type parser, its list of versions).
 */
function transportRefusal(headers: RequestHeaders, message: unknown): CallproofError | undefined {
  const accept = headers.get('accept') ?? ''
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    return new CallproofError(
      'ERR_NOT_ACCEPTABLE',
      'Accept must list both application/json and text/event-stream (MCP Streamable HTTP)',
    )
  }
  if (!isJsonContentType(headers.get('content-type'))) {
    return new CallproofError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')
  }
  // Like the SDK: `initialize` negotiates its version in the body; every later request names it.
  const version = isInitialize(message) ? null : headers.get('mcp-protocol-version')
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
