/**
 * Errors of `@callproof/client`: one base class, {@link CallproofClientError}, with a literal-union
 * `code`, so an application can tell "the server lied about its resource" from "the user closed
 * the browser" without parsing messages.
 *
 * @module
 */

/**
 * Every way the client gives up on purpose.
 *
 * @example
 * ```ts
 * if (err instanceof CallproofClientError && err.code === 'ERR_RESOURCE_MISMATCH') warn(err.message)
 * ```
 */
export type CallproofClientErrorCode =
  /** Options given to a factory are invalid (thrown at creation, not on first use). */
  | 'ERR_INVALID_OPTIONS'
  /** A metadata document (RFC 9728 / RFC 8414) is missing, not JSON, or not conform. */
  | 'ERR_INVALID_METADATA'
  /** Protected resource metadata names another resource than the server we talk to (RFC 9728 §3.3). */
  | 'ERR_RESOURCE_MISMATCH'
  /**
   * Authorization server metadata names another issuer than the one it was fetched for (RFC 8414
   * §3.3), or an authorization response names another issuer than the one asked, or none where
   * the server promised one (RFC 9207 §2.4: a mix-up).
   */
  | 'ERR_ISSUER_MISMATCH'
  /**
   * A request's `Mcp-Method` / `Mcp-Name` headers (SEP-2243) name another call than its body, which
   * the proof binds: refused before signing.
   */
  | 'ERR_BINDING_MISMATCH'
  /** The server or authorization server does not accept our proof algorithm. */
  | 'ERR_UNSUPPORTED_ALGORITHM'
  /** The authorization server does not advertise PKCE `S256`. */
  | 'ERR_PKCE_NOT_SUPPORTED'
  /** A URL we were told to fetch or open is not allowed (scheme, private address, redirect). */
  | 'ERR_UNSAFE_URL'
  /** No way to obtain a client id (no pre-registration, no metadata document, no registration endpoint). */
  | 'ERR_REGISTRATION_FAILED'
  /** The authorization response was an error, or failed `state` / `iss` checks (RFC 9207). */
  | 'ERR_AUTHORIZATION_FAILED'
  /** The token endpoint refused or answered something unusable. */
  | 'ERR_TOKEN_REQUEST_FAILED'
  /** The authorization server issued a Bearer token although a DPoP-bound one was required. */
  | 'ERR_TOKEN_NOT_BOUND'
  /**
   * The server's protected resource metadata (RFC 9728) does not offer DPoP-bound tokens: found
   * before registering or signing in. `requireBoundTokens: false` opts in to unbound tokens.
   */
  | 'ERR_DPOP_NOT_OFFERED'
  /** A challenge was still answered after the bounded number of retries. */
  | 'ERR_CHALLENGE_RETRIES_EXHAUSTED'
  /** The server refused in a way no new authorization can fix (e.g. `access_denied`). */
  | 'ERR_ACCESS_DENIED'
  /** The interaction (browser, headless, app) failed or was cancelled. */
  | 'ERR_INTERACTION_FAILED'
  /** A key or token store could not read or write its state. */
  | 'ERR_STORE'
  /** A metadata, registration or token response was larger than the client reads. */
  | 'ERR_RESPONSE_TOO_LARGE'
  /** A metadata, registration or token response did not arrive in full within the time limit. */
  | 'ERR_RESPONSE_TIMEOUT'
  /**
   * An assertion for a JWT-bearer grant (a workload token, the user's ID token, an ID-JAG) could
   * not be read, is not a JWT, has expired, or names another authorization server, resource or
   * client than the one it is for: nothing was sent with it.
   */
  | 'ERR_ASSERTION_INVALID'

/**
 * The base class of every error `@callproof/client` throws on purpose. Messages say what was wrong
 * and what was expected, never a token, a secret or a private key.
 *
 * @example
 * ```ts
 * throw new CallproofClientError('ERR_UNSAFE_URL', 'http://10.0.0.1/ is a private address')
 * ```
 */
export class CallproofClientError extends Error {
  /** What went wrong, as a stable machine-readable code. */
  readonly code: CallproofClientErrorCode

  /**
   * @param code - the machine-readable code
   * @param message - what was wrong and what was expected
   * @param options - `cause`: the underlying error
   */
  constructor(code: CallproofClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = this.constructor.name
  }
}

/**
 * A challenge the client could not satisfy within its retry budget, with the last challenge seen.
 *
 * @example
 * ```ts
 * if (err instanceof ChallengeError) console.log(err.status, err.error)
 * ```
 */
export class ChallengeError extends CallproofClientError {
  /** HTTP status of the last refusal. */
  readonly status: number
  /** The `error` parameter of the last challenge, when there was one. */
  readonly error: string | undefined

  /**
   * @param code - `ERR_CHALLENGE_RETRIES_EXHAUSTED` or `ERR_ACCESS_DENIED`
   * @param message - what was refused
   * @param status - HTTP status of the last refusal
   * @param error - the challenge's `error` parameter
   */
  constructor(
    code: 'ERR_CHALLENGE_RETRIES_EXHAUSTED' | 'ERR_ACCESS_DENIED',
    message: string,
    status: number,
    error: string | undefined,
  ) {
    super(code, message)
    this.status = status
    this.error = error
  }
}
