/**
 * `@callproof/server/redis`: the replay store (proof `jkt`+`jti` and one-time approvals) and the
 * session bindings on a Redis server, so that several instances behind one load balancer share
 * them. A copy of a proof or of a per-call approval sent to the next instance is refused there,
 * because "seen" lives in Redis, not in one process.
 *
 * Every operation is one atomic Lua script (`EVALSHA`, see `scripts.ts`): recording a replay key
 * tells whether it was new, checks the caller's quota and the total, and records it, in one step
 * (no read-then-write race between instances); creating a session checks the same quotas and,
 * when the store is full, evicts the least recently used session of the biggest holder. Every
 * key carries its expiry, so entries vanish exactly when they can no longer matter and Redis
 * never holds more than the replay window. An unexpired replay key is never dropped: a caller at
 * its quota is refused (429) and a full store refuses everyone (503), as the memory store does.
 *
 * The stores fail closed: a Redis error, a lost connection or a command slower than `timeoutMs`
 * throws {@link CallproofError} `ERR_STORE_UNAVAILABLE` (503 with `Retry-After`), never "not seen".
 * Commands are not queued while the connection is down, and the client reconnects by itself.
 *
 * Deployment requirements (see docs/operations.md):
 * - `maxmemory-policy noeviction`: an evicting Redis may drop an unexpired replay key and admit a
 *   replay. {@link RedisStores.ready} refuses an evicting policy when it can read the setting.
 * - Persistence (`appendonly yes`, `appendfsync always`) if a Redis restart must not forget what
 *   was consumed; without it a restart re-opens the replay window of proofs still in their `iat`
 *   window (at most the proof lifetime, or two nonce windows with nonces on).
 * - Clocks of the instances and of Redis synchronised (NTP): `PXAT` is read on Redis' clock.
 * - One node for one prefix (the scripts build key names): a single Redis, or on Redis Cluster a
 *   prefix with a hash tag, e.g. `{callproof}:`.
 *
 * @module
 */

import { CallproofError, QuotaExceededError } from '@callproof/core'
import type { ReplayStore } from '@callproof/core'
import { createClient } from 'redis'
import { SESSION_DEFAULTS } from '../sessions.js'
import type { SessionOwner, SessionStore } from '../sessions.js'
import { CONSUME, CREATE_SESSION, DELETE_SESSION, TOUCH_SESSION } from './scripts.js'
import type { Script } from './scripts.js'

/**
 * The part of a node-redis v5 client these stores use. Any `createClient()` result fits, whatever
 * its modules, scripts or RESP version.
 */
export interface RedisCommandClient {
  sendCommand(args: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>
}

/** Options of {@link createRedisStores}: either `url` or `client`. */
export interface RedisStoresOptions {
  /**
   * `redis://[[user][:password]@]host[:port][/db]` or `rediss://…`. The stores then own the
   * client: they connect it (without an offline queue, reconnecting with capped backoff) and
   * {@link RedisStores.close} closes it.
   */
  url?: string
  /**
   * A node-redis client the caller created, connects and closes. Create it with
   * `disableOfflineQueue: true` so that commands fail at once while it is disconnected; the
   * per-command timeout still bounds every operation either way.
   */
  client?: RedisCommandClient
  /** Prefix of every key (default `callproof:`), so several resources can share one Redis. */
  prefix?: string
  /**
   * Longest wait for one command, in ms (default 500, 1 to 60 000). Past it the operation throws
   * `ERR_STORE_UNAVAILABLE`; a reply arriving later is ignored.
   */
  timeoutMs?: number
  /** Longest wait to open a connection, in ms (default 2 000). Only with `url`. */
  connectTimeoutMs?: number
  /** Longest pause between reconnection attempts, in ms (default 1 000). Only with `url`. */
  maxReconnectDelayMs?: number
  /**
   * After this many ms in which every command timed out, the connection is dropped and opened
   * again (default the larger of 5 000 and twice `timeoutMs`; at least `timeoutMs`). Only with
   * `url`. This is what recovers from a half-open connection after a hard Redis failover.
   */
  stallResetMs?: number
  /**
   * Called with every connection error of an owned client (the client would otherwise emit them
   * on nobody). Operations report failures themselves, by throwing.
   */
  onError?: (error: Error) => void
  /** Quotas of the replay store (proofs and one-time approvals); docs/operations.md sizes them. */
  replay?: RedisReplayQuotas
  /** Quotas and idle time of the session store; docs/operations.md sizes them. */
  sessions?: RedisSessionQuotas
}

/** The bounds of the Redis replay store, shared by every instance. */
export interface RedisReplayQuotas {
  /** The most unexpired entries in total (default 500 000); beyond it, 503 for everyone. */
  maxEntries?: number
  /** The most unexpired entries of one subject (default 2 000); beyond it, 429 for it. */
  maxEntriesPerSubject?: number
  /** The most unexpired entries of one client over its subjects (default half of the total). */
  maxEntriesPerClient?: number
}

/** The bounds of the Redis session store, shared by every instance. */
export interface RedisSessionQuotas {
  /**
   * The most live sessions in total (default 100 000). When reached, the least recently used
   * session of the subject holding the most is evicted; a subject holding as many as anyone is
   * refused (429) instead.
   */
  maxSessions?: number
  /** The most live sessions of one subject (default 256); beyond it, 429 for it. */
  maxSessionsPerSubject?: number
  /** The most live sessions of one client over its subjects (default: no separate limit). */
  maxSessionsPerClient?: number
  /** A session unused for this many seconds ends (default 1 800); every use renews it. */
  idleSeconds?: number
}

/** What {@link createRedisStores} returns. */
export interface RedisStores {
  /** Replay keys (proof `jkt` + `jti`) and one-time approvals (`approval:` + token `jti`). */
  readonly replay: ReplayStore
  /** Session ↔ caller bindings, shared by every instance. */
  readonly sessions: SessionStore
  /**
   * Resolves once Redis answers (waiting up to `timeoutMs` of `options`, default 5 000 ms), loads
   * the stores' scripts and, when `CONFIG GET` is allowed, checks that Redis does not evict keys. Rejects with
   * `ERR_STORE_UNAVAILABLE` or, for an evicting Redis, `ERR_INVALID_OPTIONS`. Call it at start-up
   * to fail early; the stores work without it (and fail closed until Redis is reachable).
   */
  ready(options?: { timeoutMs?: number }): Promise<void>
  /** Closes an owned client (a client passed in is left to its owner). Idempotent. */
  close(): Promise<void>
}

/**
 * Creates the Redis-backed replay and session stores.
 *
 * Options are validated here; with `url` the connection is opened in the background, so the
 * function returns at once and operations fail closed until Redis answers.
 *
 * @example
 * ```ts
 * const redis = createRedisStores({ url: 'redis://127.0.0.1:6379' })
 * await redis.ready()
 * createCallproof({ ..., replay: redis.replay, sessions: { mode: 'stateful', store: redis.sessions } })
 * // on shutdown
 * await redis.close()
 * ```
 * @see https://redis.io/docs/latest/commands/set/
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1 (replay of proofs)
 */
export function createRedisStores(options: RedisStoresOptions): RedisStores {
  if (typeof options !== 'object' || options === null) {
    throw invalid('createRedisStores expects an options object')
  }
  const { url, client: given } = options
  if ((url === undefined) === (given === undefined)) {
    throw invalid('createRedisStores needs exactly one of `url` or `client`')
  }
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    // Never echo the URL: it may carry a password.
    throw invalid('redis url must start with redis:// or rediss://')
  }
  if (given !== undefined && typeof given.sendCommand !== 'function') {
    throw invalid('redis client must be a node-redis v5 client (with sendCommand)')
  }
  const prefix = options.prefix ?? 'callproof:'
  if (typeof prefix !== 'string' || prefix.length > 128) {
    throw invalid('redis prefix must be a string of at most 128 characters')
  }
  const timeoutMs = integerOption('timeoutMs', options.timeoutMs, 500, 1, 60_000)
  const connectTimeoutMs = integerOption(
    'connectTimeoutMs',
    options.connectTimeoutMs,
    2_000,
    1,
    600_000,
  )
  const maxReconnectDelayMs = integerOption(
    'maxReconnectDelayMs',
    options.maxReconnectDelayMs,
    1_000,
    1,
    600_000,
  )
  const stallResetMs = integerOption(
    'stallResetMs',
    options.stallResetMs,
    Math.max(5_000, 2 * timeoutMs),
    timeoutMs,
    3_600_000,
  )
  const onError = options.onError
  const replayQuotas = options.replay ?? {}
  const sessionQuotas = options.sessions ?? {}
  if (typeof replayQuotas !== 'object' || typeof sessionQuotas !== 'object') {
    throw invalid('redis replay and sessions options must be objects')
  }
  const maxEntries = integerOption('replay.maxEntries', replayQuotas.maxEntries, 500_000, 1, 1e12)
  const maxEntriesPerSubject = integerOption(
    'replay.maxEntriesPerSubject',
    replayQuotas.maxEntriesPerSubject,
    Math.min(2_000, maxEntries),
    1,
    1e12,
  )
  const maxEntriesPerClient = integerOption(
    'replay.maxEntriesPerClient',
    replayQuotas.maxEntriesPerClient,
    Math.max(1, Math.floor(maxEntries / 2)),
    1,
    1e12,
  )
  const maxSessions = integerOption(
    'sessions.maxSessions',
    sessionQuotas.maxSessions,
    100_000,
    1,
    1e12,
  )
  const maxSessionsPerSubject = integerOption(
    'sessions.maxSessionsPerSubject',
    sessionQuotas.maxSessionsPerSubject,
    SESSION_DEFAULTS.maxSessionsPerSubject,
    1,
    1e12,
  )
  // 0 tells the script "no separate client limit" (the default).
  const maxSessionsPerClient = integerOption(
    'sessions.maxSessionsPerClient',
    sessionQuotas.maxSessionsPerClient,
    0,
    sessionQuotas.maxSessionsPerClient === undefined ? 0 : 1,
    1e12,
  )
  const idleMs =
    integerOption(
      'sessions.idleSeconds',
      sessionQuotas.idleSeconds,
      SESSION_DEFAULTS.idleSeconds,
      1,
      31_536_000,
    ) * 1000
  if (onError !== undefined && typeof onError !== 'function') {
    throw invalid('redis onError must be a function')
  }

  const connect = (redisUrl: string) => {
    const fresh = createClient({
      url: redisUrl,
      // Queueing while offline would hold requests until Redis returns (or forever) and then run
      // them late: refuse at once instead, the caller answers 503 and the client retries.
      disableOfflineQueue: true,
      // A hung Redis must not collect an unbounded backlog of commands nobody waits for any more.
      commandsQueueMaxLength: 10_000,
      socket: {
        connectTimeout: connectTimeoutMs,
        // Never give up: reconnect with exponential backoff, capped, with jitter so that many
        // instances do not reconnect in lockstep.
        reconnectStrategy: (retries) =>
          Math.min(50 * 2 ** Math.min(retries, 10), maxReconnectDelayMs) +
          Math.floor(Math.random() * 50),
      },
    })
    // node-redis emits connection errors as events; without a listener Node would crash.
    fresh.on('error', (error: Error) => onError?.(error))
    fresh.connect().catch((error: unknown) => {
      onError?.(error instanceof Error ? error : new Error(String(error)))
    })
    return fresh
  }

  let owned = url !== undefined ? connect(url) : undefined
  let client: RedisCommandClient = owned ?? given!
  let closed = false
  /** When commands started timing out with no success since (undefined while healthy). */
  let stalledSince: number | undefined

  /**
   * A connection that takes commands but never answers (the Redis host vanished without a TCP
   * reset, or a failover moved the address) looks open to the client for many minutes. After
   * `stallResetMs` of nothing but timeouts, drop it and connect afresh.
   */
  function noteTimeout(): void {
    const now = Date.now()
    stalledSince ??= now
    if (owned === undefined || closed || now - stalledSince < stallResetMs) return
    stalledSince = undefined
    const stale = owned
    owned = connect(url!)
    client = owned
    onError?.(new Error(`redis answered nothing for ${stallResetMs} ms: reconnecting`))
    if (stale.isOpen) stale.destroy()
  }

  /** Runs one command with a deadline; every failure becomes ERR_STORE_UNAVAILABLE. */
  async function run(args: readonly string[]): Promise<unknown> {
    if (closed) throw unavailable(`redis ${args[0]} refused: the store is closed`)
    const abort = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Drops the command if it is still waiting to be written; once written, its late reply
        // is ignored. A SET NX that lands after the deadline only makes the key count as used,
        // which errs on the side of refusing.
        abort.abort()
        reject(unavailable(`redis ${args[0]} took longer than ${timeoutMs} ms`))
      }, timeoutMs)
    })
    try {
      const reply = await Promise.race([
        client.sendCommand(args, { abortSignal: abort.signal }),
        deadline,
      ])
      stalledSince = undefined
      return reply
    } catch (error) {
      if (abort.signal.aborted) noteTimeout()
      if (error instanceof CallproofError) throw error
      throw unavailable(`redis ${args[0]} failed: ${messageOf(error)}`, error)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Runs one script: `EVALSHA`, and the full text once more with `EVAL` when Redis does not know
   * it yet (a new or restarted Redis), which also loads it for the next calls.
   */
  async function evaluate(script: Script, args: readonly string[]): Promise<unknown> {
    try {
      return await run(['EVALSHA', script.sha, '0', prefix, ...args])
    } catch (error) {
      if (!(error instanceof CallproofError) || !/NOSCRIPT/.test(messageOf(error.cause))) {
        throw error
      }
      return run(['EVAL', script.body, '0', prefix, ...args])
    }
  }

  const replay: ReplayStore = {
    async consume(key, expiresAt, owner) {
      if (typeof key !== 'string' || key.length === 0) {
        throw new TypeError('replay key must be a non-empty string')
      }
      if (!Number.isFinite(expiresAt) || expiresAt <= 0) {
        throw new TypeError(`replay expiresAt must be a time in ms, got ${String(expiresAt)}`)
      }
      if (
        owner !== undefined &&
        (typeof owner.sub !== 'string' || typeof owner.clientId !== 'string')
      ) {
        throw new TypeError('replay owner must be { sub: string, clientId: string }')
      }
      // Rounded up: an entry may outlive its moment by < 1 ms, never expire before it.
      const reply = await evaluate(CONSUME, [
        key,
        String(Math.ceil(expiresAt)),
        owner === undefined ? '0' : '1',
        owner?.sub ?? '',
        owner?.clientId ?? '',
        String(maxEntriesPerSubject),
        String(maxEntriesPerClient),
        String(maxEntries),
      ])
      const [status, ms] = scriptReply(reply)
      if (status === 1) return true
      if (status === 0) return false
      if (status === 2 || status === 3) {
        const max = status === 2 ? maxEntriesPerSubject : maxEntriesPerClient
        throw new QuotaExceededError(
          `this ${status === 2 ? 'subject' : 'client'} holds ${max} unexpired proofs or approvals, its quota in the replay store`,
          (ms ?? 1000) / 1000,
        )
      }
      if (status === 4) {
        throw new CallproofError(
          'ERR_REPLAY_STORE_FULL',
          `the replay store holds ${maxEntries} unexpired entries; refusing rather than forgetting one`,
        )
      }
      throw unavailable(`redis replay script answered ${describe(reply)}`)
    },
  }

  const sessions: SessionStore = {
    async create(id, owner, ttlSeconds) {
      if (!isSessionId(id)) throw new TypeError('session id must be 1-256 visible ASCII characters')
      if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
        throw new TypeError(`session ttlSeconds must be positive, got ${String(ttlSeconds)}`)
      }
      const reply = await evaluate(CREATE_SESSION, [
        id,
        owner.sub,
        owner.clientId,
        owner.jkt,
        String(Math.ceil(ttlSeconds * 1000)),
        String(idleMs),
        String(maxSessions),
        String(maxSessionsPerSubject),
        String(maxSessionsPerClient),
      ])
      const [status, ms] = scriptReply(reply)
      if (status === 1) return
      // The id exists already. Overwriting would hand someone else's session to this caller, so
      // refuse (with 32 random bytes per id this is never a collision by chance).
      if (status === 0) throw new Error('session id already exists')
      const wait = (ms ?? idleMs) / 1000
      if (status === 2) {
        throw new QuotaExceededError(
          `this subject holds ${maxSessionsPerSubject} live sessions, its quota: end one (DELETE) or wait`,
          wait,
        )
      }
      if (status === 3) {
        throw new QuotaExceededError(
          `this client holds ${maxSessionsPerClient} live sessions, its quota`,
          wait,
        )
      }
      if (status === 4) {
        throw new QuotaExceededError(
          `the session store is full (${maxSessions} live sessions) and this subject holds as many as anyone: end one of its sessions or wait`,
          wait,
        )
      }
      throw unavailable(`redis session script answered ${describe(reply)}`)
    },

    async owner(id) {
      // A malformed id cannot name a session we created: answer "no such session" without Redis.
      if (!isSessionId(id)) return undefined
      // A look-up is a use: the script renews the session's idle time.
      const reply = await evaluate(TOUCH_SESSION, [id, String(idleMs)])
      if (reply === null) return undefined
      const owner = typeof reply === 'string' ? parseOwner(reply) : undefined
      // Something else wrote under our prefix: do not guess whose session it is.
      if (owner === undefined) throw unavailable('redis session entry is malformed')
      return owner
    },

    async delete(id) {
      if (!isSessionId(id)) return
      await evaluate(DELETE_SESSION, [id])
    },
  }

  return {
    replay,
    sessions,

    async ready(readyOptions = {}) {
      const wait = integerOption('ready timeoutMs', readyOptions.timeoutMs, 5_000, 1, 600_000)
      const until = Date.now() + wait
      let last: unknown
      for (;;) {
        if (closed) throw unavailable('redis store is closed')
        try {
          await run(['PING'])
          break
        } catch (error) {
          last = error
        }
        const left = until - Date.now()
        if (left <= 0) throw unavailable(`redis did not answer within ${wait} ms`, last)
        await sleep(Math.min(50, left))
      }
      // Load the scripts now, so that the first operations need not send them in full.
      for (const script of [CONSUME, CREATE_SESSION, TOUCH_SESSION, DELETE_SESSION]) {
        try {
          await run(['SCRIPT', 'LOAD', script.body])
        } catch {
          // Not fatal: an operation sends a script Redis lacks with EVAL.
        }
      }
      let policy: string | undefined
      try {
        const reply = await run(['CONFIG', 'GET', 'maxmemory-policy'])
        policy = readConfigValue(reply)
      } catch {
        // CONFIG is often disabled on managed Redis: the policy cannot be checked here.
        policy = undefined
      }
      if (policy !== undefined && policy !== 'noeviction') {
        throw invalid(
          `redis maxmemory-policy is ${policy}; callproof needs noeviction, an evicting Redis can ` +
            'drop an unexpired replay key and admit a replayed proof',
        )
      }
    },

    async close() {
      if (closed) return
      closed = true
      if (owned === undefined || !owned.isOpen) return
      // Do not wait on a hung Redis: give pending commands one timeout, then cut the connection.
      const graceful = owned.close().then(
        () => true,
        () => false,
      )
      if (!(await Promise.race([graceful, sleep(timeoutMs).then(() => false)]))) {
        if (owned.isOpen) owned.destroy()
      }
    },
  }
}

function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && /^[\x21-\x7e]{1,256}$/.test(id)
}

/** A script's `{status, ms?}` answer, or `[NaN]` for anything else (refused by the caller). */
function scriptReply(reply: unknown): [number, number | undefined] {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') return [Number.NaN, undefined]
  return [reply[0], typeof reply[1] === 'number' ? reply[1] : undefined]
}

function parseOwner(text: string): SessionOwner | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { sub, clientId, jkt } = value as Record<string, unknown>
  if (typeof sub !== 'string' || typeof clientId !== 'string' || typeof jkt !== 'string') {
    return undefined
  }
  return { sub, clientId, jkt }
}

/** `CONFIG GET` answers `[name, value]` in RESP2 and `{ name: value }` (a Map or object) in RESP3. */
function readConfigValue(reply: unknown): string | undefined {
  if (Array.isArray(reply)) return typeof reply[1] === 'string' ? reply[1] : undefined
  if (reply instanceof Map) {
    const value: unknown = reply.get('maxmemory-policy')
    return typeof value === 'string' ? value : undefined
  }
  if (typeof reply === 'object' && reply !== null) {
    const value = (reply as Record<string, unknown>)['maxmemory-policy']
    return typeof value === 'string' ? value : undefined
  }
  return undefined
}

function integerOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const result = value ?? fallback
  if (!Number.isSafeInteger(result) || result < min || result > max) {
    throw invalid(`redis ${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return result
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

function describe(reply: unknown): string {
  const text = typeof reply === 'string' ? JSON.stringify(reply) : String(reply)
  return text.length > 64 ? `${text.slice(0, 64)}…` : text
}

function unavailable(message: string, cause?: unknown): CallproofError {
  return new CallproofError(
    'ERR_STORE_UNAVAILABLE',
    message,
    cause === undefined ? undefined : { cause },
  )
}

function invalid(message: string): CallproofError {
  return new CallproofError('ERR_INVALID_OPTIONS', message)
}

export { createRedisGrantStore } from './grants.js'
export type { RedisGrantStoreOptions } from './grants.js'
