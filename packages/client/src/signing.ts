/**
 * How the client signs a proof on Node: `node:crypto`'s synchronous `sign` on the same key,
 * instead of `crypto.subtle.sign`, where Node allows it. A proof is signed on every single
 * request, and Web Crypto queues each signature as a job on libuv's thread pool: on the shared
 * cores of an agent's host the hand-offs cost more than the signature (measured: about 100 µs of
 * the client's CPU per call end to end, docs/performance.md).
 *
 * The `KeyObject` is Node's own handle to the same key, held only in this module's WeakMap: no
 * export, no copy of the key material reaches any caller. On Node 20 and 22 any code holding a
 * non-extractable `CryptoKey` can make that handle itself, so this changes nothing an attacker
 * in the process could do. Node 24 deprecates making it for a non-extractable key (DEP0204), the
 * first step to non-extractable meaning "not even in-process"; there, and on any later Node,
 * such a key is signed with Web Crypto, as the platform intends. Extractable keys (the file key
 * store's) use `node:crypto` everywhere.
 *
 * @module
 */

import { KeyObject, sign } from 'node:crypto'
import { webCryptoProofSigning } from '@callproof/core'
import type { ProofSigningFunction } from '@callproof/core'

/** Whether this Node hands a non-extractable key to `node:crypto` without a deprecation. */
const NON_EXTRACTABLE_HANDLES = Number(process.versions.node.split('.')[0]) < 24

const handles = new WeakMap<CryptoKey, KeyObject>()

/**
 * Signs a proof's signing input with `node:crypto` (ES256 as IEEE P1363 `r || s`, Ed25519 as is)
 * where Node allows a handle to the key, and with Web Crypto where it does not (a
 * non-extractable key on Node 24 and later). Errors for a key that does not fit `alg` surface
 * from `createProof` as ERR_INVALID_OPTIONS.
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
    if (!privateKey.extractable && !NON_EXTRACTABLE_HANDLES)
      return webCryptoProofSigning(data, privateKey, alg)
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
