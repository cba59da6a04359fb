/**
 * How the client signs a proof on Node: `node:crypto`'s synchronous `sign` on the same key,
 * instead of `crypto.subtle.sign`. A proof is signed on every single request, and Web Crypto
 * queues each signature as a job on libuv's thread pool and copies its input and output across:
 * about three times the CPU of the signature itself (measured in `npm run bench:client` and
 * `npm run bench`; docs/performance.md). On the shared cores of a real host, that CPU is what an
 * agent's calls per second are made of.
 *
 * The key stays what it was: the `KeyObject` is Node's own handle to the same non-extractable
 * key (no export, no copy of the key material), held only in this module's WeakMap, so it lives
 * exactly as long as the `CryptoKey` and no caller can reach it. Any code in the process that
 * holds the `CryptoKey` could make that handle itself; non-extractability protects against the
 * key being exported or persisted, which this does not do.
 *
 * @module
 */

import { KeyObject, sign } from 'node:crypto'
import type { ProofSigningFunction } from '@callproof/core'

const handles = new WeakMap<CryptoKey, KeyObject>()

/**
 * Signs a proof's signing input with `node:crypto` (ES256 as IEEE P1363 `r || s`, Ed25519 as
 * is). Errors for a key that does not fit `alg` surface from `createProof` as ERR_INVALID_OPTIONS.
 *
 * @example
 * ```ts
 * const proof = await createProof(keyPair, { htm: 'POST', htu }, { sign: nodeProofSigning })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export const nodeProofSigning: ProofSigningFunction = (data, privateKey, alg) => {
  let handle = handles.get(privateKey)
  if (handle === undefined) {
    if (privateKey.type !== 'private' || !privateKey.usages.includes('sign')) {
      // Web Crypto refuses a key without the sign usage; the handle would not, so check it here.
      throw new TypeError('the proof key is not a private key with the sign usage')
    }
    handle = KeyObject.from(privateKey)
    handles.set(privateKey, handle)
  }
  if (alg === 'ES256') {
    if (
      handle.asymmetricKeyType !== 'ec' ||
      handle.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
    )
      throw new TypeError('ES256 needs a P-256 key')
    return sign('sha256', data, { key: handle, dsaEncoding: 'ieee-p1363' })
  }
  if (handle.asymmetricKeyType !== 'ed25519') throw new TypeError(`${alg} needs an Ed25519 key`)
  return sign(null, data, handle)
}
