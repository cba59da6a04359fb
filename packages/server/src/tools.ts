/**
 * Tools registered together with their policies, and what a caller is shown of them.
 *
 * A policy is declared next to its tool, in the same `register` call, so a tool cannot exist
 * without one being considered (a tool without a policy is denied unless marked public). The
 * registry only holds registrations: the MCP SDK seam (`sdk/v1.ts`) serves them. `tools/list`
 * reflects the caller ({@link listingFor}): tools the caller can never be granted are hidden,
 * and every listed tool carries its requirements in `_meta['callproof/policy']`.
 *
 * The SDK's types describe a tool's schemas and callback, so this module imports them; it
 * imports nothing of the SDK at run time.
 *
 * @module
 */
import type { McpServer, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js'
import { CallproofError, assertValidPolicy, canEverBeGranted, isAllowedNow } from '@callproof/core'
import type { Caller, ToolPolicy } from '@callproof/core'

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

/** Options of {@link createToolRegistry}. */
export interface ToolRegistryOptions {
  /** `grantable` (default) hides tools the caller can never be granted; `all` lists every tool. */
  listing?: 'grantable' | 'all'
  /**
   * Called on a server built for one request of `caller`, after the tools are registered: the
   * place to add resources or prompts. They are not governed by tool policies; every request is
   * still verified. A registry with `setup` is served by a new `McpServer` per request (the hook
   * sees the caller, so its server cannot be shared); without it, servers are reused.
   */
  setup?: (server: McpServer, caller: Caller) => void
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
  readonly #registrations: Registrations

  constructor(info: { name: string; version: string }, options: ToolRegistryOptions = {}) {
    if (typeof info.name !== 'string' || info.name === '') {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'tool registry needs a server name')
    }
    this.#registrations = {
      info: { name: info.name, version: info.version },
      options,
      entries: this.#tools,
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

  /** The policy of a registered tool, `undefined` for an unknown tool (which is then denied). */
  policyOf(name: string): ToolPolicy | undefined {
    return this.#tools.get(name)?.config.policy
  }

  /** Every scope some tool requires: the default `scopes_supported` of the metadata. */
  scopes(): string[] {
    const scopes = new Set<string>()
    for (const { config } of this.#tools.values()) {
      for (const scope of config.policy.scopes ?? []) scopes.add(scope)
    }
    return [...scopes].sort()
  }

  /** Names of the registered tools. */
  names(): string[] {
    return [...this.#tools.keys()]
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
 * The verified caller of a tool call, read from the SDK's `extra.authInfo`. Throws when the
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
export function callerOf(extra: { authInfo?: AuthInfo | undefined }): CallerInfo['caller'] & {
  readonly scopes: readonly string[]
} {
  const info = extra.authInfo
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
