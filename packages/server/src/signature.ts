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
 * parallelism from Web Crypto. The server's default, {@link adaptiveProofVerification}, takes
 * both: `node:crypto` while the event loop has time to spare, and, while it is saturated, a few
 * checks at a time on Web Crypto's thread pool, which other cores can then run.
 *
 * Only public keys come here (the proof's `jwk`, imported by core as extractable: there is
 * nothing to protect in a public key). A non-extractable key is checked with Web Crypto instead:
 * Node deprecates handing those to `node:crypto` (DEP0204).
 *
 * @module
 */

import { KeyObject, verify } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
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

/** How often the event loop's utilization is sampled, and when it counts as saturated. */
const SAMPLE_MS = 50
const STALE_MS = 200
const SATURATED = 0.9

/**
 * The server's default proof signature check: {@link nodeProofVerification} (the least CPU per
 * check, on the event loop) while the event loop has time to spare; while it is saturated (busy
 * at least 90 % of the last 50 ms), up to one check per other core at a time goes to Web Crypto,
 * whose thread pool the other cores can run. So one process under load uses more than one core
 * for signatures, and an idle or shared one pays the lower cost. The answer is the same either
 * way: only where the check runs differs.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ ...options, verifySignature: adaptiveProofVerification() })
 * ```
 */
export function adaptiveProofVerification(): ProofSignatureCheck {
  const spare = Math.max(0, availableParallelism() - 1)
  let pooled = 0
  let saturated = false
  let sampledAt = performance.now()
  let last = performance.eventLoopUtilization()
  const release = () => {
    pooled--
  }
  return (data, signature, publicKey, alg) => {
    const now = performance.now()
    if (now - sampledAt >= SAMPLE_MS) {
      const current = performance.eventLoopUtilization()
      // A window much longer than a sample means checks are rare: no load to spread.
      saturated =
        now - sampledAt <= STALE_MS &&
        performance.eventLoopUtilization(current, last).utilization >= SATURATED
      last = current
      sampledAt = now
    }
    if (!saturated || pooled >= spare) return nodeProofVerification(data, signature, publicKey, alg)
    pooled++
    const check = Promise.resolve(webCryptoProofVerification(data, signature, publicKey, alg))
    check.then(release, release)
    return check
  }
}
