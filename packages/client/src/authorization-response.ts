/**
 * The mix-up defence (RFC 9207, MCP 2026-07-28 SEP-2468): an authorization response names the
 * authorization server that issued it (`iss`), and the client compares it with the one it sent
 * the user to before it reads anything else of the response. A client that talks to several
 * authorization servers (one per MCP server) can otherwise be made to redeem, at its honest
 * server's token endpoint, a code an attacker's server steered back to it, or to show an
 * attacker's error text as if the honest server wrote it.
 *
 * oauth4webapi's `validateAuthResponse` makes the same comparison; this runs first so that a
 * mix-up is its own error (`ERR_ISSUER_MISMATCH`) whose message carries nothing of the response.
 *
 * @module
 */

import type * as oauth from 'oauth4webapi'
import { CallproofClientError } from './errors.js'

/**
 * Throws unless `callback`'s `iss` is exactly `as.issuer` (RFC 9207 §2.4: simple string
 * comparison), or is absent from a server that does not advertise
 * `authorization_response_iss_parameter_supported`.
 *
 * @throws {@link CallproofClientError} `ERR_ISSUER_MISMATCH`
 * @example
 * ```ts
 * assertAuthorizationResponseIssuer(as, new URL('http://127.0.0.1:53123/callback?code=c&state=s&iss=https%3A%2F%2Fas.example'))
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 */
export function assertAuthorizationResponseIssuer(
  as: oauth.AuthorizationServer,
  callback: URL,
): void {
  const values = callback.searchParams.getAll('iss')
  // The response's own text (error, error_description) is not quoted: after a mix-up it is the
  // attacker's.
  if (values.length > 1) {
    throw new CallproofClientError(
      'ERR_ISSUER_MISMATCH',
      `the authorization response names more than one issuer; expected ${as.issuer} (RFC 9207)`,
    )
  }
  const iss = values[0]
  if (iss === undefined) {
    if (as.authorization_response_iss_parameter_supported === true) {
      throw new CallproofClientError(
        'ERR_ISSUER_MISMATCH',
        `the authorization response names no issuer although ${as.issuer} advertises authorization_response_iss_parameter_supported (RFC 9207): refused as a possible mix-up`,
      )
    }
    return
  }
  if (iss !== as.issuer) {
    throw new CallproofClientError(
      'ERR_ISSUER_MISMATCH',
      `the authorization response was issued by another authorization server than ${as.issuer} (RFC 9207): refused as a mix-up`,
    )
  }
}
