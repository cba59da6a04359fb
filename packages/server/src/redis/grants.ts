/**
 * Encrypted third-party grants (see `grants.ts`) on Redis, so that every instance finds the grant
 * a user gave through any of them, and a restart forgets nothing. The values are sealed before
 * they get here; Redis never sees a token in the clear.
 *
 * @module
 */
import { CallproofError } from '@callproof/core'
import type { GrantStore } from '../grants.js'
import type { RedisCommandClient } from './index.js'

/** Options of {@link createRedisGrantStore}. */
export interface RedisGrantStoreOptions {
  /** A connected node-redis v5 client (e.g. `createClient({ url })` after `connect()`). */
  readonly client: RedisCommandClient
  /** Key prefix (default `callproof:grants:`). */
  readonly prefix?: string
  /** Per-command timeout in milliseconds (default 500). */
  readonly timeoutMs?: number
}

/**
 * A {@link GrantStore} on Redis: `SET EX`, `GET`, `GETDEL` and `DEL`, each one atomic command.
 * Errors and timeouts throw `ERR_STORE_UNAVAILABLE` (no grant is ever assumed).
 *
 * @example
 * ```ts
 * const client = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
 * const store = createRedisGrantStore({ client })
 * ```
 */
export function createRedisGrantStore(options: RedisGrantStoreOptions): GrantStore {
  if (typeof options?.client?.sendCommand !== 'function') {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'redis client must be a node-redis v5 client')
  }
  const prefix = options.prefix ?? 'callproof:grants:'
  const timeoutMs = options.timeoutMs ?? 500
  const send = async (args: string[]): Promise<unknown> => {
    try {
      return await options.client.sendCommand(args, { abortSignal: AbortSignal.timeout(timeoutMs) })
    } catch (cause) {
      throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the grant store (Redis) is unavailable', {
        cause,
      })
    }
  }
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined)
  return {
    get: async (key) => text(await send(['GET', prefix + key])),
    set: async (key, value, ttl) => {
      await send(['SET', prefix + key, value, 'EX', String(Math.max(1, Math.ceil(ttl)))])
    },
    take: async (key) => text(await send(['GETDEL', prefix + key])),
    delete: async (key) => {
      await send(['DEL', prefix + key])
    },
  }
}
