/**
 * How the server checks proof signatures on Node: `node:crypto`'s synchronous `verify`, instead
 * of `crypto.subtle.verify`. Every call carries a fresh proof, so this is the one signature
 * check per request. Web Crypto queues each check as a job on libuv's thread pool and copies its
 * input across: measured at 95 to 160 µs of CPU per P-256 check against 75 µs for the check
 * itself on the benchmark machine. When the MCP server shares its cores with other work, as it
 * does in `npm run bench`, that CPU is throughput (docs/performance.md).
 *
 * The trade-off: a synchronous check runs on the event loop, where Web Crypto spreads checks over
 * the thread pool. One process on an otherwise idle multi-core machine gets more wall-clock
 * parallelism from Web Crypto (`proofSignatures: 'web-crypto'`); callproof favours less CPU per
 * call, which is what a shared host and several instances (docs/operations.md) scale with.
 *
 * Only public keys come here (the proof's `jwk`, imported by core as extractable: there is
 * nothing to protect in a public key). A non-extractable key is checked with Web Crypto instead:
 * Node deprecates handing those to `node:crypto` (DEP0204).
 *
 * @module
 */

import { KeyObject, verify } from 'node:crypto'
import { webCryptoProofVerification } from '@callproof/core'
import type { ProofSignatureCheck } from '@callproof/core'

// Node's handle for each imported proof key, made once: the verifier's key cache keeps the
// CryptoKey alive while a client keeps calling, and the handle goes with it.
const handles = new WeakMap<CryptoKey, KeyObject>()

/**
 * Checks a proof signature with `node:crypto` (ES256 as IEEE P1363 `r || s` over a P-256 key,
 * Ed25519 as is), and with Web Crypto for a key Node should not be handed (non-extractable).
 * The key must fit `alg`: core's verifier only passes keys imported for that `alg`, and this
 * function checks again, because `node:crypto` would otherwise pick a digest and a signature
 * encoding from the key (an EC key under `EdDSA` would verify a DER ECDSA signature).
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
    if (publicKey.type !== 'public' || !publicKey.extractable) {
      return webCryptoProofVerification(data, signature, publicKey, alg)
    }
    handle = KeyObject.from(publicKey)
    handles.set(publicKey, handle)
  }
  if (alg === 'ES256') {
    if (
      handle.asymmetricKeyType !== 'ec' ||
      handle.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
    )
      throw new TypeError('ES256 needs a P-256 public key')
    return verify('sha256', data, { key: handle, dsaEncoding: 'ieee-p1363' }, signature)
  }
  if (handle.asymmetricKeyType !== 'ed25519')
    throw new TypeError(`${alg} needs an Ed25519 public key`)
  return verify(null, data, handle, signature)
}
