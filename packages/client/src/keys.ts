/**
 * The client's proof key: generated as a non-extractable Web Crypto key pair, so the private key
 * never leaves the process (a compromised dependency can sign while it runs, but cannot copy the
 * key away and keep signing elsewhere).
 *
 * @module
 */

import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { CallproofClientError } from './errors.js'

/** A proof algorithm the client can sign with. `ES256` is the default. */
export type KeyAlgorithm = 'ES256' | 'Ed25519'

/**
 * Generates a proof key pair.
 *
 * @param alg - `ES256` (default, P-256) or `Ed25519`
 * @param options - `extractable` only for stores that must persist the key (see {@link FileKeyStore})
 * @example
 * ```ts
 * const keyPair = await generateProofKeyPair('ES256')
 * keyPair.privateKey.extractable // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-2
 */
export async function generateProofKeyPair(
  alg: KeyAlgorithm = 'ES256',
  options: { extractable?: boolean } = {},
): Promise<CryptoKeyPair> {
  const algorithm = keyGenParams(alg)
  return (await crypto.subtle.generateKey(algorithm, options.extractable === true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
}

function keyGenParams(alg: KeyAlgorithm): EcKeyGenParams | Algorithm {
  if (alg === 'ES256') return { name: 'ECDSA', namedCurve: 'P-256' }
  if (alg === 'Ed25519') return { name: 'Ed25519' }
  throw new CallproofClientError(
    'ERR_INVALID_OPTIONS',
    `key algorithm ${String(alg)} is not supported; expected ES256 or Ed25519`,
  )
}

/**
 * The JWS `alg` names a key pair signs with, the first being what the client puts in its proofs.
 * Ed25519 has two names (RFC 9864 `Ed25519`, legacy `EdDSA`); either may be advertised.
 *
 * @example
 * ```ts
 * proofAlgorithms(keyPair) // ['ES256']
 * ```
 */
export function proofAlgorithms(keyPair: CryptoKeyPair): readonly string[] {
  const algorithm = keyPair.privateKey.algorithm as EcKeyAlgorithm
  if (algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256') return ['ES256']
  if (algorithm.name === 'Ed25519') return ['EdDSA', 'Ed25519']
  throw new CallproofClientError(
    'ERR_INVALID_OPTIONS',
    `key algorithm ${algorithm.name} is not supported; expected ECDSA P-256 or Ed25519`,
  )
}

/**
 * Where a proof key lives between runs.
 *
 * @example
 * ```ts
 * const keyPair = await loadOrCreateKeyPair(new MemoryKeyStore())
 * ```
 */
export interface KeyStore {
  /** The stored key pair, or `undefined` when none is stored yet. */
  load(): Promise<CryptoKeyPair | undefined>
  /** Generates and stores a new key pair. */
  create(alg: KeyAlgorithm): Promise<CryptoKeyPair>
}

/**
 * The default store: a non-extractable key that lives as long as the process.
 *
 * @example
 * ```ts
 * const store = new MemoryKeyStore()
 * ```
 */
export class MemoryKeyStore implements KeyStore {
  #keyPair: CryptoKeyPair | undefined

  /** @returns the key pair created earlier in this process, if any */
  load(): Promise<CryptoKeyPair | undefined> {
    return Promise.resolve(this.#keyPair)
  }

  /** Generates a non-extractable key pair and keeps it in memory. */
  async create(alg: KeyAlgorithm): Promise<CryptoKeyPair> {
    this.#keyPair = await generateProofKeyPair(alg)
    return this.#keyPair
  }
}

interface StoredKey {
  alg: KeyAlgorithm
  privateJwk: JsonWebKey
  publicJwk: JsonWebKey
}

/**
 * A key pair kept in a JSON file (mode 0600) for command-line use, so a CLI keeps its identity
 * (and its DPoP-bound tokens stay usable) across runs.
 *
 * Trade-off, on purpose and documented: a key that is written to disk must be extractable once,
 * at creation. Anyone who can read the file can impersonate this client until its tokens expire.
 * After loading, the private key is re-imported as non-extractable, so the running process cannot
 * leak it further through Web Crypto. Prefer {@link MemoryKeyStore} wherever a process lives long.
 *
 * @example
 * ```ts
 * const keyPair = await loadOrCreateKeyPair(new FileKeyStore(`${home}/.callproof/key.json`))
 * ```
 */
export class FileKeyStore implements KeyStore {
  readonly #path: string

  /** @param path - the JSON file; created with mode 0600, its directory with mode 0700 */
  constructor(path: string) {
    if (typeof path !== 'string' || path === '') {
      throw new CallproofClientError('ERR_INVALID_OPTIONS', 'FileKeyStore needs a file path')
    }
    this.#path = path
  }

  /** Reads the file and imports the private key as non-extractable. */
  async load(): Promise<CryptoKeyPair | undefined> {
    let text: string
    try {
      text = await readFile(this.#path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new CallproofClientError('ERR_STORE', `cannot read key file ${this.#path}`, {
        cause: err,
      })
    }
    try {
      const stored = JSON.parse(text) as StoredKey
      const params = keyGenParams(stored.alg)
      const privateKey = await crypto.subtle.importKey('jwk', stored.privateJwk, params, false, [
        'sign',
      ])
      const publicKey = await crypto.subtle.importKey('jwk', stored.publicJwk, params, true, [
        'verify',
      ])
      return { privateKey, publicKey }
    } catch (err) {
      throw new CallproofClientError('ERR_STORE', `key file ${this.#path} is not a valid key`, {
        cause: err,
      })
    }
  }

  /** Generates an extractable key pair, writes it (mode 0600, atomically), returns it. */
  async create(alg: KeyAlgorithm): Promise<CryptoKeyPair> {
    const generated = await generateProofKeyPair(alg, { extractable: true })
    const stored: StoredKey = {
      alg,
      privateJwk: await crypto.subtle.exportKey('jwk', generated.privateKey),
      publicJwk: await crypto.subtle.exportKey('jwk', generated.publicKey),
    }
    try {
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 })
      // Written under a temporary name with 0600 from the first byte, then renamed, so the key is
      // never readable by others, not even for an instant.
      const tmp = `${this.#path}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(stored), { mode: 0o600 })
      await chmod(tmp, 0o600)
      await rename(tmp, this.#path)
    } catch (err) {
      throw new CallproofClientError('ERR_STORE', `cannot write key file ${this.#path}`, {
        cause: err,
      })
    }
    const loaded = await this.load()
    if (!loaded) throw new CallproofClientError('ERR_STORE', `key file ${this.#path} vanished`)
    return loaded
  }
}

/**
 * The stored key pair, or a new one when the store is empty.
 *
 * @example
 * ```ts
 * const keyPair = await loadOrCreateKeyPair(new MemoryKeyStore(), 'Ed25519')
 * ```
 */
export async function loadOrCreateKeyPair(
  store: KeyStore,
  alg: KeyAlgorithm = 'ES256',
): Promise<CryptoKeyPair> {
  return (await store.load()) ?? (await store.create(alg))
}
