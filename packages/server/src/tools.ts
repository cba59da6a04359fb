/**
 * Tools, prompts and resources registered together with their policies, and what a caller is
 * shown of them.
 *
 * A policy is declared next to its primitive, in the same call that registers it, so nothing can
 * be served without one being considered (`{ public: true }` opens it on purpose). The registry
 * only holds registrations: the MCP SDK seam (`sdk/v1.ts`) serves them, and the pipeline decides
 * each call with {@link targetOf}. Every listing (`tools/list`, `prompts/list`,
 * `resources/list`, `resources/templates/list`) reflects the caller: what the caller can never be
 * granted is hidden, and every listed item carries its requirements in
 * `_meta['callproof/policy']`.
 *
 * Which resource a URI names is decided by one function, {@link resolveResource}, for both the
 * policy decision and the read, so that the policy checked is always the policy of what is read.
 * It matches templates with the SDK's own `UriTemplate` (the one run-time import of the SDK
 * here); the other SDK imports are types.
 *
 * @module
 */
import type { McpServer, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type {
  CompleteResourceTemplateCallback,
  ListResourcesCallback,
  PromptCallback,
  ReadResourceCallback,
  ReadResourceTemplateCallback,
  ResourceMetadata,
} from '@modelcontextprotocol/sdk/server/mcp.js'
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js'
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js'
import type { Variables } from '@modelcontextprotocol/sdk/shared/uriTemplate.js'
import { CallproofError, assertValidPolicy, canEverBeGranted, isAllowedNow } from '@callproof/core'
import type { Caller, PrimitiveKind, ToolPolicy } from '@callproof/core'

/** The `_meta` key under which a listed tool's requirements are published. */
export const POLICY_META_KEY = 'callproof/policy'

/** What `_meta['callproof/policy']` holds for a listed tool. */
export interface ListedPolicy {
  readonly public?: true
  readonly scopes?: readonly string[]
  readonly acr?: readonly string[]
  readonly maxAge?: number
  readonly approval?: 'per-call'
  /** The downstream services the tool calls on the caller's behalf (see {@link ToolConfig}). */
  readonly downstream?: readonly string[]
  /** `'optional'` when a proof without the `mcp` claim is accepted (absent: binding required). */
  readonly binding?: 'optional'
  /** True when this caller, with its current token, would be asked to step up. */
  readonly stepUp: boolean
}

/** A tool's registration: the SDK's `registerTool` config plus the callproof policy. */
export interface ToolConfig<
  InputArgs extends undefined | ZodRawShapeCompat | AnySchema,
  OutputArgs extends ZodRawShapeCompat | AnySchema,
> {
  title?: string
  description?: string
  inputSchema?: InputArgs
  outputSchema?: OutputArgs
  annotations?: ToolAnnotations
  _meta?: Record<string, unknown>
  /** Who may call the tool. Required: use `{ public: true }` to open a tool to every caller. */
  policy: ToolPolicy
  /**
   * The downstream services the tool calls on its caller's behalf (names of
   * `createDownstreamCredentials` / `createThirdPartyAuthorizations` services), so that
   * `tools/list` tells clients which other services a call reaches.
   */
  downstream?: readonly string[]
}

/**
 * A resource's or resource template's registration: the SDK's `registerResource` metadata plus
 * the callproof policy. Per-call approval is for tools only (an approval token names a tool).
 */
export interface ResourceConfig extends ResourceMetadata {
  /** Who may read the resource. Required: use `{ public: true }` to open it to every caller. */
  policy: ToolPolicy
}

/** A resource template's registration: {@link ResourceConfig} plus the SDK template's callbacks. */
export interface ResourceTemplateConfig extends ResourceConfig {
  /**
   * Lists the concrete resources of the template in `resources/list` (each is listed only for
   * callers who may see the resource its URI resolves to).
   */
  list?: ListResourcesCallback
  /** Completions of the template's variables (`completion/complete` with `ref/resource`). */
  complete?: Record<string, CompleteResourceTemplateCallback>
}

/** A prompt's registration: the SDK's `registerPrompt` config plus the callproof policy. */
export interface PromptConfig<Args extends undefined | ZodRawShapeCompat> {
  title?: string
  description?: string
  argsSchema?: Args
  /** Who may get the prompt. Required: use `{ public: true }` to open it to every caller. */
  policy: ToolPolicy
}

/** Options of {@link createToolRegistry}. */
export interface ToolRegistryOptions {
  /** `grantable` (default) hides tools the caller can never be granted; `all` lists every tool. */
  listing?: 'grantable' | 'all'
  /**
   * Called on a server built for one request of `caller`, after everything is registered. What
   * it adds to the server is not governed by any policy (every request is still verified):
   * register resources and prompts with {@link ToolRegistry.resource},
   * {@link ToolRegistry.resourceTemplate} and {@link ToolRegistry.prompt} instead, which carry
   * one. A registry with `setup` is served by a new `McpServer` per request (the hook sees the
   * caller, so its server cannot be shared); without it, servers are reused.
   */
  setup?: (server: McpServer, caller: Caller) => void
  /**
   * Declare the `logging` capability: `logging/setLevel` then sets the level of the caller's own
   * session, and log notifications (`notifications/message`) below it are not sent to it.
   */
  logging?: boolean
}

/** A static resource, as the SDK seam and the pipeline read it. */
export interface ResourceEntry {
  readonly kind: 'resource'
  readonly name: string
  /** The URI, as `new URL(uri).href` spells it (the SDK looks resources up that way). */
  readonly uri: string
  readonly config: ResourceConfig
  readonly read: ReadResourceCallback
}

/** A resource template, as the SDK seam and the pipeline read it. */
export interface TemplateEntry {
  readonly kind: 'template'
  readonly name: string
  readonly template: UriTemplate
  readonly config: ResourceTemplateConfig
  readonly read: ReadResourceTemplateCallback
}

/** A prompt, as the SDK seam and the pipeline read it. */
export interface PromptEntry {
  readonly name: string
  readonly config: PromptConfig<undefined | ZodRawShapeCompat>
  readonly callback: unknown
}

/** One registration, as the SDK seam reads it. */
export interface ToolEntry {
  readonly name: string
  readonly config: ToolConfig<
    undefined | ZodRawShapeCompat | AnySchema,
    ZodRawShapeCompat | AnySchema
  >
  readonly callback: unknown
}

/** Context the registry needs to decide what a caller sees. */
export interface ListingContext {
  readonly resource: string
  readonly now: number
}

/** What the seam needs of a registry: its registrations (in order) and when they changed. */
interface Registrations {
  readonly info: { readonly name: string; readonly version: string }
  readonly options: ToolRegistryOptions
  readonly entries: ReadonlyMap<string, ToolEntry>
  /** Static resources by URI (`new URL(uri).href`). */
  readonly resources: ReadonlyMap<string, ResourceEntry>
  /** Resource templates by name, in registration order (the order the SDK matches them in). */
  readonly templates: ReadonlyMap<string, TemplateEntry>
  readonly prompts: ReadonlyMap<string, PromptEntry>
  /** Who hears of {@link ToolRegistry.resourceUpdated} (the SDK seams serving this registry). */
  readonly updates: Set<(uri: string) => void>
  /** Grows with every `register`, so that servers built from older registrations are dropped. */
  version: number
}

const registrations = new WeakMap<ToolRegistry, Registrations>()

/**
 * The registrations of `registry`, for the SDK seam (not part of the public API: a registry's
 * contents are read only by the code that serves them).
 */
export function registrationsOf(registry: ToolRegistry): Readonly<Registrations> {
  const found = registrations.get(registry)
  if (found === undefined) throw new CallproofError('ERR_INVALID_OPTIONS', 'not a ToolRegistry')
  return found
}

/**
 * Tools and their policies, and the per-caller `McpServer`s built from them.
 *
 * @example
 * ```ts
 * const tools = createToolRegistry({ name: 'drive', version: '1.0.0' })
 * tools.register(
 *   'read_file',
 *   { description: 'Read a file', inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
 *   async ({ path }, extra) => ({ content: [{ type: 'text', text: read(callerOf(extra).sub, path) }] }),
 * )
 * ```
 */
export class ToolRegistry {
  readonly #tools = new Map<string, ToolEntry>()
  readonly #resources = new Map<string, ResourceEntry>()
  readonly #templates = new Map<string, TemplateEntry>()
  readonly #prompts = new Map<string, PromptEntry>()
  readonly #registrations: Registrations
  #unbound = { version: -1, accepts: false }

  constructor(info: { name: string; version: string }, options: ToolRegistryOptions = {}) {
    if (typeof info.name !== 'string' || info.name === '') {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'tool registry needs a server name')
    }
    this.#registrations = {
      info: { name: info.name, version: info.version },
      options,
      entries: this.#tools,
      resources: this.#resources,
      templates: this.#templates,
      prompts: this.#prompts,
      updates: new Set(),
      version: 0,
    }
    registrations.set(this, this.#registrations)
  }

  /**
   * Registers a tool with its policy. The callback has the SDK's `ToolCallback` signature; read
   * the verified caller with {@link callerOf}.
   */
  register<
    OutputArgs extends ZodRawShapeCompat | AnySchema,
    InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
  >(
    name: string,
    config: ToolConfig<InputArgs, OutputArgs>,
    callback: ToolCallback<InputArgs>,
  ): this {
    if (this.#tools.has(name))
      throw new CallproofError('ERR_INVALID_OPTIONS', `tool ${name} is already registered`)
    if (typeof name !== 'string' || name === '')
      throw new CallproofError('ERR_INVALID_OPTIONS', 'a tool needs a name')
    if (typeof config.policy !== 'object' || config.policy === null) {
      throw new CallproofError(
        'ERR_INVALID_OPTIONS',
        `tool ${name} needs a policy (use { public: true } for an open tool)`,
      )
    }
    // Checked now, not on the first call: a typo in a policy must stop the server from starting.
    assertValidPolicy(name, config.policy)
    if (
      config.downstream !== undefined &&
      (!Array.isArray(config.downstream) ||
        config.downstream.some((d: unknown) => typeof d !== 'string' || d === '' || d.length > 64))
    ) {
      throw new CallproofError(
        'ERR_INVALID_OPTIONS',
        `tool ${name}: downstream must list service names (non-empty strings)`,
      )
    }
    this.#tools.set(name, { name, config: config as ToolEntry['config'], callback })
    this.#registrations.version++
    return this
  }

  /**
   * Registers a static resource with its policy, like the SDK's `registerResource(name, uri,
   * metadata, read)`. `resources/read` of `uri` is decided by the policy before `read` runs.
   *
   * @example
   * ```ts
   * tools.resource('readme', 'docs://readme', { mimeType: 'text/plain', policy: { scopes: ['docs:read'] } },
   *   (uri) => ({ contents: [{ uri: uri.href, text: 'Hello' }] }))
   * ```
   */
  resource(name: string, uri: string, config: ResourceConfig, read: ReadResourceCallback): this {
    checkName('resource', name)
    let href: string
    try {
      href = new URL(uri).href
    } catch {
      throw new CallproofError('ERR_INVALID_OPTIONS', `resource ${name}: ${uri} is not a URI`)
    }
    if (this.#resources.has(href)) {
      throw new CallproofError('ERR_INVALID_OPTIONS', `resource ${href} is already registered`)
    }
    checkPolicy('resource', name, config)
    checkCallback('resource', name, read)
    this.#resources.set(href, { kind: 'resource', name, uri: href, config, read })
    this.#registrations.version++
    return this
  }

  /**
   * Registers a resource template (RFC 6570, as the SDK's `ResourceTemplate` reads it) with its
   * policy. Every URI the template matches is read under this policy, unless a static resource
   * or an earlier template matches it first (the SDK's order).
   *
   * @example
   * ```ts
   * tools.resourceTemplate('note', 'notes://{id}', { policy: { scopes: ['notes:read'] } },
   *   (uri, { id }) => ({ contents: [{ uri: uri.href, text: `note ${String(id)}` }] }))
   * ```
   */
  resourceTemplate(
    name: string,
    uriTemplate: string,
    config: ResourceTemplateConfig,
    read: ReadResourceTemplateCallback,
  ): this {
    checkName('resource template', name)
    if (this.#templates.has(name)) {
      throw new CallproofError(
        'ERR_INVALID_OPTIONS',
        `resource template ${name} is already registered`,
      )
    }
    let template: UriTemplate
    try {
      template = new UriTemplate(uriTemplate)
    } catch (cause) {
      throw new CallproofError('ERR_INVALID_OPTIONS', `resource template ${name}: bad template`, {
        cause,
      })
    }
    checkPolicy('resource template', name, config)
    checkCallback('resource template', name, read)
    this.#templates.set(name, { kind: 'template', name, template, config, read })
    this.#registrations.version++
    return this
  }

  /**
   * Registers a prompt with its policy, like the SDK's `registerPrompt`. `prompts/get` is decided
   * by the policy before the callback runs; its proof binds the name and the arguments' digest.
   *
   * @example
   * ```ts
   * tools.prompt('summarize', { argsSchema: { text: z.string() }, policy: { scopes: ['notes:read'] } },
   *   ({ text }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Summarize: ${text}` } }] }))
   * ```
   */
  prompt<Args extends undefined | ZodRawShapeCompat = undefined>(
    name: string,
    config: PromptConfig<Args>,
    callback: PromptCallback<Args>,
  ): this {
    checkName('prompt', name)
    if (this.#prompts.has(name)) {
      throw new CallproofError('ERR_INVALID_OPTIONS', `prompt ${name} is already registered`)
    }
    checkPolicy('prompt', name, config)
    checkCallback('prompt', name, callback)
    this.#prompts.set(name, { name, config: config as PromptEntry['config'], callback })
    this.#registrations.version++
    return this
  }

  /**
   * Tells the callers subscribed to `uri` (`resources/subscribe`) that it changed: each gets
   * `notifications/resources/updated` on its own session's standalone stream (the GET stream),
   * and no one else does. A subscription lasts while the token it was made with is accepted.
   *
   * @example
   * ```ts
   * notes.set(id, text)
   * tools.resourceUpdated(`notes://${id}`)
   * ```
   */
  resourceUpdated(uri: string): void {
    let href: string
    try {
      href = new URL(uri).href
    } catch {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'resourceUpdated needs a URI')
    }
    for (const listener of this.#registrations.updates) listener(href)
  }

  /** The policy of a registered tool, `undefined` for an unknown tool (which is then denied). */
  policyOf(name: string): ToolPolicy | undefined {
    return this.#tools.get(name)?.config.policy
  }

  /** Every scope some tool requires: the default `scopes_supported` of the metadata. */
  scopes(): string[] {
    const scopes = new Set<string>()
    const configs = [
      ...this.#tools.values(),
      ...this.#resources.values(),
      ...this.#templates.values(),
      ...this.#prompts.values(),
    ].map((entry) => entry.config)
    for (const config of configs) {
      for (const scope of config.policy.scopes ?? []) scopes.add(scope)
    }
    return [...scopes].sort()
  }

  /**
   * True when some tool, resource, template or prompt declares `binding: 'optional'`: only then
   * does the pipeline let a proof without an `mcp` claim past the verifier, to refuse it in the
   * policy step (ERR_BINDING_REQUIRED) unless what it calls accepts it.
   */
  acceptsUnboundProofs(): boolean {
    // Asked on every request: remembered per registration version, not recomputed each time.
    const version = this.#registrations.version
    if (this.#unbound.version !== version) {
      const entries = [
        ...this.#tools.values(),
        ...this.#resources.values(),
        ...this.#templates.values(),
        ...this.#prompts.values(),
      ]
      this.#unbound = {
        version,
        accepts: entries.some((entry) => entry.config.policy.binding === 'optional'),
      }
    }
    return this.#unbound.accepts
  }

  /** Names of the registered tools. */
  names(): string[] {
    return [...this.#tools.keys()]
  }
}

function checkName(what: string, name: unknown): void {
  if (typeof name !== 'string' || name === '') {
    throw new CallproofError('ERR_INVALID_OPTIONS', `a ${what} needs a name`)
  }
}

function checkCallback(what: string, name: string, callback: unknown): void {
  if (typeof callback !== 'function') {
    throw new CallproofError('ERR_INVALID_OPTIONS', `${what} ${name} needs a callback`)
  }
}

function checkPolicy(what: string, name: string, config: { policy?: unknown } | undefined): void {
  const policy = config?.policy
  if (typeof policy !== 'object' || policy === null) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `${what} ${name} needs a policy (use { public: true } to open it to every caller)`,
    )
  }
  try {
    assertValidPolicy(`${what} ${name}`, policy)
  } catch (error) {
    // core words it for tools ("policy of tool …"); this names the prompt or resource instead.
    if (!(error instanceof CallproofError)) throw error
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      error.message.replace(/^policy of tool /, 'policy of '),
    )
  }
  // The approval token format (RFC 9396 `mcp_tool_call`) names a tool and its arguments: an
  // approval of a prompt or a resource would have to say so in a type of its own.
  if ((policy as ToolPolicy).approval !== undefined) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `${what} ${name}: per-call approval is available for tools only`,
    )
  }
}

/**
 * Creates a {@link ToolRegistry}.
 *
 * @example
 * ```ts
 * const tools = createToolRegistry({ name: 'drive', version: '1.0.0' })
 * tools.register('whoami', { policy: { public: true } }, (extra) => ({
 *   content: [{ type: 'text', text: JSON.stringify(callerOf(extra)) }],
 * }))
 * ```
 */
export function createToolRegistry(
  info: { name: string; version: string },
  options: ToolRegistryOptions = {},
): ToolRegistry {
  return new ToolRegistry(info, options)
}

/**
 * Which tools `caller` is shown, in registration order, each with the `_meta` to list it with:
 * its own `_meta` plus its requirements under {@link POLICY_META_KEY}. Tools the caller can never
 * be granted are left out unless the registry lists `all`.
 */
export function listingFor(
  registry: ToolRegistry,
  caller: Caller,
  context: ListingContext,
): { name: string; meta: Record<string, unknown> }[] {
  const { entries, options } = registrationsOf(registry)
  const listed: { name: string; meta: Record<string, unknown> }[] = []
  for (const { name, config } of entries.values()) {
    if (options.listing !== 'all' && !canEverBeGranted(config.policy, caller)) continue
    listed.push({
      name,
      meta: {
        ...config._meta,
        [POLICY_META_KEY]: listedPolicy(config.policy, caller, name, context, config.downstream),
      },
    })
  }
  return listed
}

function listedPolicy(
  policy: ToolPolicy,
  caller: Caller,
  tool: string,
  context: ListingContext,
  downstream?: readonly string[],
): ListedPolicy {
  // The digest only matters for approvals, which always require a step-up (one per call), so any
  // value gives the same answer here. isAllowedNow builds no error for a refusal.
  const allowed = isAllowedNow(policy, {
    caller,
    tool,
    argsDigest: '',
    resource: context.resource,
    now: context.now,
  })
  return {
    ...(policy.public === true ? { public: true as const } : {}),
    ...(policy.scopes !== undefined ? { scopes: [...policy.scopes] } : {}),
    ...(policy.acr !== undefined ? { acr: [...policy.acr] } : {}),
    ...(policy.maxAge !== undefined ? { maxAge: policy.maxAge } : {}),
    ...(policy.approval !== undefined ? { approval: policy.approval } : {}),
    ...(downstream !== undefined ? { downstream: [...downstream] } : {}),
    ...(policy.binding === 'optional' ? { binding: 'optional' as const } : {}),
    stepUp: !allowed,
  }
}

/** What callproof puts into `extra.authInfo.extra` for every verified request. */
export interface CallerInfo {
  readonly caller: {
    readonly sub: string
    readonly clientId: string
    readonly jkt: string
    readonly acr?: string
    readonly authTime?: number
    readonly tokenId: string
  }
}

/**
 * The verified caller of a tool call, read from the SDK's `extra.authInfo` (v1) or `ctx.http.authInfo` (v2). Throws when the
 * request did not pass through callproof (a handler must never run for an unverified caller).
 *
 * @example
 * ```ts
 * tools.register('whoami', { policy: { public: true } }, (extra) => {
 *   const { sub } = callerOf(extra)
 *   return { content: [{ type: 'text', text: sub }] }
 * })
 * ```
 */
export function callerOf(
  extra: { authInfo?: AuthInfo | undefined } | { http?: { authInfo?: AuthInfo | undefined } },
): CallerInfo['caller'] & {
  readonly scopes: readonly string[]
} {
  // SDK v1 hands tools `extra.authInfo`; SDK v2 hands them `ctx.http.authInfo`.
  const info =
    'authInfo' in extra && extra.authInfo !== undefined
      ? extra.authInfo
      : (extra as { http?: { authInfo?: AuthInfo } }).http?.authInfo
  const caller = (info?.extra as Partial<CallerInfo> | undefined)?.caller
  if (info === undefined || caller === undefined) {
    throw new Error('no verified caller: the request did not pass through callproof')
  }
  return { ...caller, scopes: info.scopes }
}

/**
 * Builds `extra.authInfo` from a verified caller, the shape DESIGN.md pins:
 * `{ token, clientId, scopes, expiresAt, resource, extra: { caller } }`.
 *
 * @example
 * ```ts
 * transport.handleRequest(request, { parsedBody, authInfo: authInfoFor(caller, token, exp, resource) })
 * ```
 */
export function authInfoFor(
  caller: Caller,
  token: string,
  expiresAt: number,
  resource: string,
): AuthInfo {
  return {
    token,
    clientId: caller.clientId,
    scopes: [...caller.scopes],
    expiresAt,
    resource: new URL(resource),
    extra: {
      caller: {
        sub: caller.sub,
        clientId: caller.clientId,
        jkt: caller.jkt,
        ...(caller.acr !== undefined ? { acr: caller.acr } : {}),
        ...(caller.authTime !== undefined ? { authTime: caller.authTime } : {}),
        tokenId: caller.tokenId,
      },
    } satisfies CallerInfo,
  }
}

/** What a resource URI resolves to: a static resource, or a template and its variables. */
export type ResolvedResource =
  | { readonly entry: ResourceEntry }
  | { readonly entry: TemplateEntry; readonly variables: Variables }

/**
 * The resource `uri` names, exactly as the SDK would find it: the URI as `new URL(uri).href`,
 * a static resource first, then the templates in registration order, the first match winning.
 * The pipeline decides with it and the seam reads with it, so the two cannot disagree.
 * `undefined` for a URI that is not a URL or names nothing (refused like a resource the caller
 * may never read).
 */
export function resolveResource(registry: ToolRegistry, uri: string): ResolvedResource | undefined {
  const { resources, templates } = registrationsOf(registry)
  let href: string
  try {
    href = new URL(uri).href
  } catch {
    return undefined
  }
  const entry = resources.get(href)
  if (entry !== undefined) return { entry }
  for (const template of templates.values()) {
    const variables = template.template.match(href)
    if (variables !== null) return { entry: template, variables }
  }
  return undefined
}

/** What a policy decides for one message: which primitive, by which name, under which policy. */
export interface PolicyTarget {
  readonly kind: PrimitiveKind
  /** The tool's or prompt's name, or the resource's URI as the proof names it. */
  readonly name: string
  /** `undefined` for something not registered: refused, like a policy that grants nothing. */
  readonly policy: ToolPolicy | undefined
}

/**
 * The policy that governs `message`, or `undefined` when none does (listings, `ping`,
 * `initialize`, notifications, …: only the verified caller matters there).
 *
 * - `tools/call`, `prompts/get`: the named tool's or prompt's policy;
 * - `resources/read`, `resources/subscribe`, `resources/unsubscribe`: the policy of the resource
 *   the URI resolves to ({@link resolveResource});
 * - `completion/complete`: the policy of the prompt or resource its `ref` names, so that a
 *   caller gets completions only for what it may use (the SDK's completers do not see the
 *   caller). Asked only for a well-formed `ref`; anything else is left to the SDK to refuse.
 */
export function targetOf(registry: ToolRegistry, message: unknown): PolicyTarget | undefined {
  const m = message as { method?: unknown; params?: Record<string, unknown> } | undefined
  const params = m?.params
  switch (m?.method) {
    case 'tools/call':
      return typeof params?.name === 'string'
        ? { kind: 'tool', name: params.name, policy: registry.policyOf(params.name) }
        : undefined
    case 'prompts/get':
      return typeof params?.name === 'string'
        ? { kind: 'prompt', name: params.name, policy: promptPolicy(registry, params.name) }
        : undefined
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return typeof params?.uri === 'string'
        ? {
            kind: 'resource',
            name: params.uri,
            policy: resolveResource(registry, params.uri)?.entry.config.policy,
          }
        : undefined
    case 'completion/complete':
      return completionTarget(registry, params?.ref)
    default:
      return undefined
  }
}

function promptPolicy(registry: ToolRegistry, name: string): ToolPolicy | undefined {
  return registrationsOf(registry).prompts.get(name)?.config.policy
}

function completionTarget(registry: ToolRegistry, ref: unknown): PolicyTarget | undefined {
  const r = ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined
  if (r?.type === 'ref/prompt' && typeof r.name === 'string') {
    return { kind: 'prompt', name: r.name, policy: promptPolicy(registry, r.name) }
  }
  if (r?.type === 'ref/resource' && typeof r.uri === 'string') {
    // The SDK completes the template whose template string is `uri`, else answers a static
    // resource of exactly that URI with no completions: the same lookups, in the same order.
    const { templates, resources } = registrationsOf(registry)
    const uri = r.uri
    const template = [...templates.values()].find((t) => t.template.toString() === uri)
    const policy = template?.config.policy ?? resources.get(uri)?.config.policy
    return { kind: 'resource', name: uri, policy }
  }
  return undefined
}

/** One item a caller is shown in a listing, with the `_meta` to list it with. */
export interface ListedItem<T> {
  readonly entry: T
  readonly meta: Record<string, unknown>
}

/**
 * The entries `caller` is shown of `entries`, each with its own `_meta` plus its requirements
 * under {@link POLICY_META_KEY}; those the caller can never be granted are left out unless the
 * registry lists `all`.
 */
export function visibleTo<T extends { readonly config: { policy: ToolPolicy; _meta?: unknown } }>(
  registry: ToolRegistry,
  entries: Iterable<T>,
  nameOf: (entry: T) => string,
  caller: Caller,
  context: ListingContext,
): ListedItem<T>[] {
  const { options } = registrationsOf(registry)
  const listed: ListedItem<T>[] = []
  for (const entry of entries) {
    const policy = entry.config.policy
    if (options.listing !== 'all' && !canEverBeGranted(policy, caller)) continue
    const own = entry.config._meta as Record<string, unknown> | undefined
    listed.push({
      entry,
      meta: { ...own, [POLICY_META_KEY]: listedPolicy(policy, caller, nameOf(entry), context) },
    })
  }
  return listed
}

/** Whether `caller` may see a resource under `policy` in a listing. */
export function isVisible(registry: ToolRegistry, policy: ToolPolicy, caller: Caller): boolean {
  return registrationsOf(registry).options.listing === 'all' || canEverBeGranted(policy, caller)
}
