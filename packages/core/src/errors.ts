/**
 * Errors of `@callproof/core`: one base class, {@link CallproofError}, with a literal-union `code`
 * (the jose habit: `err.code === 'ERR_INVALID_PROOF'`), and subclasses that carry the data their
 * HTTP challenge needs. {@link toHttpAnswer} turns any of them into the HTTP answer.
 *
 * @module
 */

import type { McpToolCallAuthorizationDetail } from './caller.js'

/**
 * Every way a call can be refused (or a verifier misconfigured). The comment on each code names
 * the HTTP answer {@link toHttpAnswer} gives it.
 *
 * @example
 * ```ts
 * if (err instanceof CallproofError && err.code === 'ERR_REPLAY') audit('replayed proof')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export type CallproofErrorCode =
  /** 401, challenge without `error` (RFC 6750 §3.1). */
  | 'ERR_NO_CREDENTIALS'
  /** 401 `invalid_token`: malformed header, bad/expired/unbound token, wrong aud/iss/typ/alg. */
  | 'ERR_INVALID_TOKEN'
  /** 401 `invalid_token`: the `Bearer` scheme (a DPoP-bound token must be sent as `DPoP`). */
  | 'ERR_BEARER_NOT_ALLOWED'
  /** 401 `invalid_dpop_proof`: missing/several/malformed proof, alg, htm, htu, iat, ath, jkt. */
  | 'ERR_INVALID_PROOF'
  /** 401 `invalid_dpop_proof`: the `mcp` claim does not describe the parsed body. */
  | 'ERR_BINDING_MISMATCH'
  /**
   * 401 `invalid_dpop_proof`: the proof carries no `mcp` claim, and what it calls requires one
   * (only on a server where some primitive accepts unbound proofs; elsewhere a missing claim is
   * `ERR_BINDING_MISMATCH`). The client must bind the call (docs/protocol.md §6.3).
   */
  | 'ERR_BINDING_REQUIRED'
  /** 401 `invalid_dpop_proof`: this key thumbprint + `jti` was seen before. */
  | 'ERR_REPLAY'
  /** 401 `use_dpop_nonce` + `DPoP-Nonce` header. */
  | 'ERR_USE_NONCE'
  /** 403 `insufficient_scope`, `scope` lists every scope the tool requires. */
  | 'ERR_INSUFFICIENT_SCOPE'
  /** 401 `insufficient_user_authentication`, `acr_values`, `max_age` (RFC 9470). */
  | 'ERR_INSUFFICIENT_USER_AUTHENTICATION'
  /** 403 `insufficient_authorization_details` + the authorization details to request. */
  | 'ERR_APPROVAL_REQUIRED'
  /** 403 `insufficient_authorization_details`: the one-time approval was already used. */
  | 'ERR_APPROVAL_USED'
  /**
   * 403 `access_denied`: `callers` excludes the caller (final). Answered exactly as
   * `ERR_TOOL_DENIED`, body `code` included, so the caller cannot learn that the tool exists; only
   * the audit sees this code.
   */
  | 'ERR_CALLER_NOT_ALLOWED'
  /** 403 `access_denied`: the tool has no policy and is not public, or is unknown. */
  | 'ERR_TOOL_DENIED'
  /** 404: unknown session or another caller's (the same answer, so it reveals nothing). */
  | 'ERR_SESSION_NOT_FOUND'
  /** 400: a request other than `initialize` without `Mcp-Session-Id` on a server with sessions. */
  | 'ERR_SESSION_REQUIRED'
  /** 400: JSON-RPC batch (array body). */
  | 'ERR_BATCH_NOT_SUPPORTED'
  /** 400: not JSON, or not a JSON-RPC message. */
  | 'ERR_MALFORMED_BODY'
  /** 413: body over the configured limit. */
  | 'ERR_BODY_TOO_LARGE'
  /** 406: a POST whose `Accept` does not list both `application/json` and `text/event-stream`. */
  | 'ERR_NOT_ACCEPTABLE'
  /** 415: a POST whose `Content-Type` is not `application/json`. */
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  /** 400: an `MCP-Protocol-Version` header naming a version the server does not speak. */
  | 'ERR_UNSUPPORTED_PROTOCOL_VERSION'
  /**
   * 400: an `Mcp-Method` or `Mcp-Name` header (MCP 2026-07-28, SEP-2243) missing where the revision
   * requires it, or disagreeing with the body or with the proof's `mcp` binding.
   */
  | 'ERR_HEADER_MISMATCH'
  /**
   * 400: a Multi Round-Trip continuation (`requestState`, `inputResponses`) that this server did
   * not issue to this caller for this very call.
   */
  | 'ERR_INVALID_CONTINUATION'
  /** 403: `Origin`/`Host` validation failed (DNS rebinding). */
  | 'ERR_ORIGIN_NOT_ALLOWED'
  /** 503 + `Retry-After`: the replay store is full of unexpired entries (fail closed). */
  | 'ERR_REPLAY_STORE_FULL'
  /** 503 + `Retry-After`: a state store could not be reached (fail closed). */
  | 'ERR_STORE_UNAVAILABLE'
  /**
   * 429 + `Retry-After`: this caller (subject or client) holds its quota of sessions or of
   * unexpired replay/approval entries; other callers are not affected ({@link QuotaExceededError}).
   */
  | 'ERR_QUOTA_EXCEEDED'
  /** Thrown when a verifier, store or policy is created with invalid options. */
  | 'ERR_INVALID_OPTIONS'

/**
 * The base class of every error `@callproof/core` throws on purpose. The message says what was
 * wrong and what was expected, never a secret (no tokens, no proofs, no arguments).
 *
 * @example
 * ```ts
 * throw new CallproofError('ERR_INVALID_PROOF', 'proof htm GET does not match request method POST')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export class CallproofError extends Error {
  /** What went wrong, as a stable machine-readable code. */
  readonly code: CallproofErrorCode

  /**
   * @param code - the error code
   * @param message - what was wrong and what was expected
   * @param options - `cause` is passed on to `Error`
   */
  constructor(code: CallproofErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = this.constructor.name
  }
}

/**
 * The token lacks a scope the tool needs. `scopes` is every scope the tool requires (not only the
 * missing ones), so one step-up covers the whole tool (MCP authorization, 2026-07-28).
 *
 * @example
 * ```ts
 * throw new InsufficientScopeError(['drive:read', 'drive:write'])
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export class InsufficientScopeError extends CallproofError {
  /** Every scope the tool requires, to be named in the challenge's `scope` parameter. */
  readonly scopes: string[]

  /**
   * @param scopes - every scope the tool requires
   * @param message - defaults to a message naming the scopes
   */
  constructor(scopes: readonly string[], message?: string, options?: { cause?: unknown }) {
    super(
      'ERR_INSUFFICIENT_SCOPE',
      message ?? `the tool requires the scopes ${scopes.join(' ')}`,
      options,
    )
    this.scopes = [...scopes]
  }
}

/**
 * The tool needs a stronger (`acr`) or fresher (`max_age` since `auth_time`) login.
 *
 * @example
 * ```ts
 * throw new InsufficientUserAuthenticationError({ acrValues: ['urn:callproof:acr:mfa'], maxAge: 300 })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9470#section-3
 */
export class InsufficientUserAuthenticationError extends CallproofError {
  /** The acceptable `acr` values, for the challenge's `acr_values`. */
  readonly acrValues?: string[]
  /** The maximum age of the authentication in seconds, for the challenge's `max_age`. */
  readonly maxAge?: number

  /**
   * @param requirement - what a new login must satisfy
   * @param message - defaults to a message naming the requirement
   */
  constructor(
    requirement: { acrValues?: readonly string[]; maxAge?: number },
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_INSUFFICIENT_USER_AUTHENTICATION',
      message ??
        [
          requirement.acrValues ? `acr one of ${requirement.acrValues.join(' ')}` : undefined,
          requirement.maxAge !== undefined
            ? `authentication at most ${requirement.maxAge} s old`
            : undefined,
        ]
          .filter(Boolean)
          .join(' and ')
          .replace(/^/, 'the tool requires '),
      options,
    )
    if (requirement.acrValues) this.acrValues = [...requirement.acrValues]
    if (requirement.maxAge !== undefined) this.maxAge = requirement.maxAge
  }
}

/**
 * The tool needs an approval of this very call (`approval: 'per-call'`), or the approval presented
 * was already used (`code` `ERR_APPROVAL_USED`). `authorizationDetails` is what the client asks the
 * authorization server for (RFC 9396).
 *
 * @example
 * ```ts
 * throw new ApprovalRequiredError([
 *   { type: 'mcp_tool_call', resource: 'https://drive.example/mcp', tool: 'share_file', args },
 * ])
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */
export class ApprovalRequiredError extends CallproofError {
  /** The authorization details to request for this call. */
  readonly authorizationDetails: McpToolCallAuthorizationDetail[]

  /**
   * @param authorizationDetails - the authorization details to request
   * @param message - defaults to a message naming the tool
   * @param options - `code` `ERR_APPROVAL_USED` when a one-time approval was already consumed
   */
  constructor(
    authorizationDetails: readonly McpToolCallAuthorizationDetail[],
    message?: string,
    options?: { cause?: unknown; code?: 'ERR_APPROVAL_REQUIRED' | 'ERR_APPROVAL_USED' },
  ) {
    const code = options?.code ?? 'ERR_APPROVAL_REQUIRED'
    super(
      code,
      message ??
        (code === 'ERR_APPROVAL_USED'
          ? 'the approval of this call was already used; approve the call again'
          : `the tool ${authorizationDetails[0]?.tool ?? ''} requires an approval of this very call`),
      options?.cause === undefined ? undefined : { cause: options.cause },
    )
    this.authorizationDetails = authorizationDetails.map((d) => ({ ...d }))
  }
}

/**
 * The server requires a DPoP nonce (RFC 9449 §8) and the proof had none or a stale one. `nonce`
 * is sent back in the `DPoP-Nonce` header; an empty string means "not known here" and the header
 * is left out (the caller should rethrow with the current nonce).
 *
 * @example
 * ```ts
 * throw new UseNonceError(await nonces.current())
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-9
 */
export class UseNonceError extends CallproofError {
  /** The nonce the client must put in its next proof. */
  readonly nonce: string

  /**
   * @param nonce - the current nonce
   * @param message - defaults to "a fresh DPoP nonce is required"
   */
  constructor(nonce: string, message?: string, options?: { cause?: unknown }) {
    super('ERR_USE_NONCE', message ?? 'the proof must carry the current DPoP nonce', options)
    this.nonce = nonce
  }
}

/**
 * A caller is over its own quota in a state store: too many live sessions, or too many unexpired
 * proofs or approvals in the replay window. Answered 429 with `Retry-After`; only this caller is
 * refused, every other caller keeps working. `retryAfterSeconds` is when the caller's oldest
 * entry runs out (at least 1).
 *
 * @example
 * ```ts
 * throw new QuotaExceededError('alice holds 32 live sessions, the most one subject may hold', 120)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6585#section-4
 */
export class QuotaExceededError extends CallproofError {
  /** Seconds until the caller may try again (whole seconds, at least 1). */
  readonly retryAfterSeconds: number

  /**
   * @param message - which quota, and whose (never a secret)
   * @param retryAfterSeconds - when the caller's oldest entry runs out
   */
  constructor(message: string, retryAfterSeconds: number, options?: { cause?: unknown }) {
    super('ERR_QUOTA_EXCEEDED', message, options)
    this.retryAfterSeconds = Number.isFinite(retryAfterSeconds)
      ? Math.max(1, Math.ceil(retryAfterSeconds))
      : 1
  }
}
