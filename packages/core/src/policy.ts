/**
 * Tool policies and their evaluation: every tool decides, per call, whether this caller may run
 * it now, and if not, what step-up (scope, login, approval) could change that.
 *
 * @module
 */

import { isObject } from './encoding.js'
import {
  ApprovalRequiredError,
  CallproofError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
} from './errors.js'
import type { Caller, McpToolCallAuthorizationDetail } from './caller.js'

/**
 * A tool's policy, declared next to the tool. A tool with no policy is denied; `{}` allows any
 * verified caller; `public: true` marks a deliberately open tool (other requirements, if any,
 * still apply). `callers.clientIds` and `callers.subjects` must both match when both are given.
 *
 * @example
 * ```ts
 * const deleteFile: ToolPolicy = { scopes: ['drive:write'], acr: ['urn:callproof:acr:mfa'], maxAge: 300 }
 * const shareFile: ToolPolicy = { scopes: ['drive:share'], approval: 'per-call' }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9470
 */
export interface ToolPolicy {
  /** The tool is open to any verified caller, on purpose. */
  public?: boolean
  /** Every scope the token must carry. */
  scopes?: readonly string[]
  /** Acceptable `acr` values (the login strength). */
  acr?: readonly string[]
  /** Maximum seconds since `auth_time`. */
  maxAge?: number
  /** Only these clients and/or subjects (a final refusal for anyone else). */
  callers?: { clientIds?: readonly string[]; subjects?: readonly string[] }
  /** Each call needs its own approval token (RFC 9396 `mcp_tool_call`). */
  approval?: 'per-call'
  /**
   * Whether a call's DPoP proof must carry the `mcp` claim that binds it to this very message
   * (default `'required'`). `'optional'` also accepts a standard RFC 9449 proof without `mcp`
   * (e.g. a DPoP client that knows nothing of callproof): it is still key-bound, `ath`-bound,
   * fresh and single-use, but whoever sees such a proof in flight could, if it is the first to use
   * it, put another call under it. A proof that carries a wrong `mcp` claim is refused either way.
   * It loosens, never requires: it does not make a policy "declared". (Addition to the contract.)
   */
  binding?: 'required' | 'optional'
}

/**
 * Why a policy decided as it did.
 *
 * @example
 * ```ts
 * audit({ reason: decision.reason })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9470
 */
export type DecisionReason =
  | 'allowed'
  | 'public'
  | 'no_policy'
  | 'caller_not_allowed'
  | 'insufficient_scope'
  | 'insufficient_user_authentication'
  | 'approval_required'

/**
 * The outcome of {@link evaluatePolicy}. An allowed per-call approval names the approval token
 * (`tokenId`) the server must consume once (replay store key `"approval:" + tokenId`, until
 * `expiresAt` ms); a denial carries the error to answer with.
 *
 * @example
 * ```ts
 * if (!decision.allow) return toResponse(decision.error, ctx)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9396
 */
export type Decision =
  | { allow: true; reason: 'allowed' | 'public'; approval?: { tokenId: string; expiresAt: number } }
  | {
      allow: false
      reason: Exclude<DecisionReason, 'allowed' | 'public'>
      error: CallproofError
    }

/**
 * The input of {@link evaluatePolicy}.
 *
 * @example
 * ```ts
 * const input: PolicyInput = { caller, tool: 'share_file', argsDigest, resource, authorizationDetails, now: Date.now() }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9396
 */
export interface PolicyInput {
  caller: Caller
  /** The name of what is called: a tool's or prompt's name, a resource's URI. */
  tool: string
  /**
   * What `tool` names (default `'tool'`): only the wording of a refusal depends on it. A
   * resource's refusal does not repeat its URI, which the caller chose and may be long.
   * (Addition to the contract.)
   */
  kind?: PrimitiveKind
  /** {@link argsDigest} of this call's arguments (the proof's `mcp.args`). */
  argsDigest: string
  /** This server's resource URI. */
  resource: string
  /** The token's `authorization_details` (untrusted shape). */
  authorizationDetails?: unknown
  /** Milliseconds since the epoch. */
  now: number
  /**
   * When the access token stops being accepted, ms since the epoch: `claims.exp * 1000` plus the
   * verifier's clock tolerance. An approval must be remembered as used at least that long (a
   * minute more is added for the replay store's own clock). Default: `now` + 24 h. (Addition to
   * the contract.)
   */
  tokenExpiresAt?: number
}

/**
 * The MCP primitives a policy can govern: tools (`tools/call`), prompts (`prompts/get`) and
 * resources (`resources/read`, by URI). (Addition to the contract.)
 *
 * @example
 * ```ts
 * const kind: PrimitiveKind = 'resource'
 * ```
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server
 */
export type PrimitiveKind = 'tool' | 'prompt' | 'resource'

const APPROVAL_SKEW_MS = 60_000
const DEFAULT_APPROVAL_MEMORY_MS = 24 * 3600_000

function deny(
  reason: Exclude<DecisionReason, 'allowed' | 'public'>,
  error: CallproofError,
): Decision {
  return { allow: false, reason, error }
}

function callerAllowed(policy: ToolPolicy, caller: Caller): boolean {
  const { clientIds, subjects } = policy.callers ?? {}
  if (clientIds && !clientIds.includes(caller.clientId)) return false
  if (subjects && !subjects.includes(caller.sub)) return false
  return true
}

/** A refusal as data: which check failed and, for an approval, the call to approve. */
type Verdict =
  | { allow: true; reason: 'allowed' | 'public'; approval?: { tokenId: string; expiresAt: number } }
  | { allow: false; reason: Exclude<DecisionReason, 'allowed' | 'public'> }

/**
 * The checks of {@link evaluatePolicy} without building the refusal's error: errors capture a
 * stack trace, and `tools/list` evaluates every tool's policy for the caller, so the listing must
 * not pay for errors nobody throws.
 */
function verdictOf(policy: ToolPolicy | undefined, input: PolicyInput): Verdict {
  const { caller, tool } = input
  // `{}` must not open a tool by accident: a policy that requires nothing counts only when it
  // says so with `public: true` (default deny, as for a tool without a policy).
  if (!isDeclared(policy)) {
    return { allow: false, reason: 'no_policy' }
  }
  if (!callerAllowed(policy, caller)) return { allow: false, reason: 'caller_not_allowed' }
  const required = policy.scopes ?? []
  for (const scope of required) {
    if (!caller.scopes.includes(scope)) return { allow: false, reason: 'insufficient_scope' }
  }
  const acrOk = !policy.acr || (caller.acr !== undefined && policy.acr.includes(caller.acr))
  const ageOk =
    policy.maxAge === undefined ||
    (caller.authTime !== undefined && input.now / 1000 - caller.authTime <= policy.maxAge)
  if (!acrOk || !ageOk) return { allow: false, reason: 'insufficient_user_authentication' }
  const reason = policy.public ? 'public' : 'allowed'
  if (policy.approval !== 'per-call') return { allow: true, reason }
  const details = Array.isArray(input.authorizationDetails) ? input.authorizationDetails : []
  // The entry for this server only: an approval may name several servers in one token.
  let entry: Record<string, unknown> | undefined
  let own = 0
  for (const d of details) {
    if (isObject(d) && d.type === 'mcp_tool_call' && d.resource === input.resource) {
      own++
      entry = d
    }
  }
  if (own !== 1 || !entry || entry.tool !== tool || entry.args !== input.argsDigest) {
    return { allow: false, reason: 'approval_required' }
  }
  const expiresAt =
    (input.tokenExpiresAt ?? input.now + DEFAULT_APPROVAL_MEMORY_MS) + APPROVAL_SKEW_MS
  return { allow: true, reason, approval: { tokenId: caller.tokenId, expiresAt } }
}

/** The error a refusal is answered with (built only when the call is refused). */
function refusalError(
  reason: Exclude<DecisionReason, 'allowed' | 'public'>,
  policy: ToolPolicy | undefined,
  input: PolicyInput,
): CallproofError {
  const tool = input.tool
  switch (reason) {
    case 'no_policy':
    case 'caller_not_allowed':
      // One message for both: it becomes the caller's error_description, and a different one
      // would tell a caller that `callers` excludes that the tool exists. The code keeps the
      // reason for the audit (toHttpAnswer shows ERR_TOOL_DENIED for both).
      return new CallproofError(
        reason === 'no_policy' ? 'ERR_TOOL_DENIED' : 'ERR_CALLER_NOT_ALLOWED',
        input.kind === 'resource'
          ? 'the resource is not available'
          : `the ${input.kind ?? 'tool'} ${tool} is not available`,
      )
    case 'insufficient_scope':
      return new InsufficientScopeError(policy?.scopes ?? [])
    case 'insufficient_user_authentication': {
      const requirement: { acrValues?: readonly string[]; maxAge?: number } = {}
      if (policy?.acr) requirement.acrValues = policy.acr
      if (policy?.maxAge !== undefined) requirement.maxAge = policy.maxAge
      return new InsufficientUserAuthenticationError(requirement)
    }
    case 'approval_required': {
      const wanted: McpToolCallAuthorizationDetail = {
        type: 'mcp_tool_call',
        resource: input.resource,
        tool,
        args: input.argsDigest,
      }
      return new ApprovalRequiredError([wanted])
    }
  }
}

/**
 * Decides whether `caller` may call `tool` now. Checks, in order: a policy exists, the caller is
 * allowed (final), every required scope (the refusal names all of them), `acr` and `max_age`
 * (one refusal names both), and a per-call approval whose own-resource `mcp_tool_call` entry
 * names exactly this tool and these arguments.
 *
 * @example
 * ```ts
 * const decision = evaluatePolicy(policies.get(name), {
 *   caller: call.caller, tool: name, argsDigest: binding.args, resource, now: Date.now(),
 *   authorizationDetails: call.token.claims.authorization_details,
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc9470#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */
export function evaluatePolicy(policy: ToolPolicy | undefined, input: PolicyInput): Decision {
  const verdict = verdictOf(policy, input)
  if (verdict.allow) return verdict
  return deny(verdict.reason, refusalError(verdict.reason, policy, input))
}

/**
 * True exactly when {@link evaluatePolicy} would allow the call, without building the error of a
 * refusal (no stack trace is captured): for `tools/list`, which asks this of every tool. Nothing
 * is consumed; an allowed per-call approval is still consumed by the server when it runs the call.
 *
 * @example
 * ```ts
 * const stepUp = !isAllowedNow(policy, { caller, tool, argsDigest: '', resource, now: Date.now() })
 * ```
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 */
export function isAllowedNow(policy: ToolPolicy | undefined, input: PolicyInput): boolean {
  return verdictOf(policy, input).allow
}

/**
 * False when no step-up could ever let `caller` use the tool (no policy, or the caller is not in
 * `callers`): `tools/list` leaves such tools out.
 *
 * @example
 * ```ts
 * const visible = tools.filter((t) => canEverBeGranted(t.policy, call.caller))
 * ```
 * @see https://modelcontextprotocol.io/specification/draft/basic/authorization
 */
export function canEverBeGranted(policy: ToolPolicy | undefined, caller: Caller): boolean {
  return isDeclared(policy) && callerAllowed(policy, caller)
}

/** Whether a policy asks anything of the caller beyond a verified call. */
function requiresSomething(policy: ToolPolicy): boolean {
  return (
    (policy.scopes?.length ?? 0) > 0 ||
    policy.acr !== undefined ||
    policy.maxAge !== undefined ||
    policy.callers !== undefined ||
    policy.approval !== undefined
  )
}

/** A policy that exists and either requires something or says `public: true`. */
function isDeclared(policy: ToolPolicy | undefined): policy is ToolPolicy {
  return policy !== undefined && (policy.public === true || requiresSomething(policy))
}

const POLICY_KEYS = new Set(['public', 'scopes', 'acr', 'maxAge', 'callers', 'approval', 'binding'])

function stringList(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.length > 0)
}

/**
 * Throws ERR_INVALID_OPTIONS when `policy` is not a well-formed {@link ToolPolicy} (unknown keys,
 * non-string scopes, a negative or fractional `maxAge`, …), so that a typo in a policy fails at
 * registration instead of silently opening or closing a tool. (Addition to the contract.)
 *
 * @example
 * ```ts
 * assertValidPolicy('delete_file', { scopes: ['drive:write'], maxAge: 300 })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9470
 */
export function assertValidPolicy(tool: string, policy: unknown): asserts policy is ToolPolicy {
  const fail = (what: string): never => {
    throw new CallproofError('ERR_INVALID_OPTIONS', `policy of tool ${tool}: ${what}`)
  }
  if (!isObject(policy)) fail('must be an object')
  const p = policy as Record<string, unknown>
  for (const key of Object.keys(p)) if (!POLICY_KEYS.has(key)) fail(`unknown key ${key}`)
  if (p.public !== undefined && typeof p.public !== 'boolean') fail('public must be a boolean')
  if (p.scopes !== undefined && !stringList(p.scopes)) fail('scopes must be non-empty strings')
  if (p.scopes !== undefined && (p.scopes as string[]).some((s) => /[\s"\\]/.test(s))) {
    fail('a scope must not contain spaces, quotes or backslashes')
  }
  if (p.acr !== undefined && (!stringList(p.acr) || (p.acr as string[]).length === 0)) {
    fail('acr must be a non-empty array of strings')
  }
  if (p.maxAge !== undefined && (!Number.isInteger(p.maxAge) || (p.maxAge as number) < 0)) {
    fail('maxAge must be a non-negative integer number of seconds')
  }
  if (p.approval !== undefined && p.approval !== 'per-call') fail("approval must be 'per-call'")
  if (p.binding !== undefined && p.binding !== 'required' && p.binding !== 'optional') {
    fail("binding must be 'required' or 'optional'")
  }
  if (p.public !== true && !requiresSomething(p as ToolPolicy)) {
    fail('requires nothing: declare { public: true } if any verified caller may call this tool')
  }
  if (p.callers !== undefined) {
    if (!isObject(p.callers)) fail('callers must be an object')
    const c = p.callers as Record<string, unknown>
    for (const key of Object.keys(c)) {
      if (key !== 'clientIds' && key !== 'subjects') fail(`unknown callers key ${key}`)
    }
    if (c.clientIds !== undefined && !stringList(c.clientIds))
      fail('callers.clientIds must be strings')
    if (c.subjects !== undefined && !stringList(c.subjects))
      fail('callers.subjects must be strings')
  }
}
