/**
 * How the server checks proof signatures on Node: `node:crypto`'s synchronous `verify`, instead
 * of `crypto.subtle.verify`. Every call carries a fresh proof, so this is the one signature
 * check per request. Web Crypto queues each check as a job on libuv's thread pool and copies its
 * input across: measured at about 1.3 to 1.9 times the CPU of the check itself (95 to 145 µs
 * against 75 µs for P-256 on the benchmark machine). When the MCP server shares its cores with
 * other work, as it does in `npm run bench`, that CPU is throughput (docs/performance.md).
 *
 * The trade-off: a synchronous check runs on the event loop (about 75 µs per ES256 call), where
 * Web Crypto spreads checks over the thread pool. One process on an otherwise idle multi-core
 * machine gets more wall-clock parallelism from Web Crypto; callproof favours less CPU per call,
 * which is what a shared host and several instances (docs/operations.md) scale with.
 *
 * @module
 */

import { KeyObject, verify } from 'node:crypto'
import type { ProofSignatureCheck } from '@callproof/core'

// Node's handle for each imported proof key, made once: the verifier's key cache keeps the
// CryptoKey alive while a client keeps calling, and the handle goes with it.
const handles = new WeakMap<CryptoKey, KeyObject>()

/**
 * Checks a proof signature with `node:crypto` (ES256 as IEEE P1363 `r || s`, Ed25519 as is).
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ ...options, verifySignature: nodeProofVerification })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export const nodeProofVerification: ProofSignatureCheck = (data, signature, publicKey, alg) => {
  let handle = handles.get(publicKey)
  if (handle === undefined) {
    handle = KeyObject.from(publicKey)
    handles.set(publicKey, handle)
  }
  return alg === 'ES256'
    ? verify('sha256', data, { key: handle, dsaEncoding: 'ieee-p1363' }, signature)
    : verify(null, data, handle, signature)
}
