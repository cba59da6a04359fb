/**
 * The Lua scripts of the Redis stores. Each operation is one script, so that checking a quota,
 * dropping what has expired and recording the new entry happen in one atomic step on Redis, with
 * no read-then-write race between instances. Time is Redis' own (`TIME`), the clock `PXAT`
 * expiries are read on, so counts and expiries agree.
 *
 * Keys (all under the store's prefix, built inside the scripts, so the prefix must keep them on
 * one Redis node: a single server, or a Cluster prefix with a hash tag such as `{callproof}:`):
 * - `replay:<key>`: one proof or approval, `PXAT` its expiry (as before quotas existed).
 * - `quota:replay:{all,sub:<sub>,client:<client_id>}`: sorted sets of the unexpired replay keys,
 *   scored by expiry, that count them per caller; each expires with its last member.
 * - `session:<id>`: JSON `{sub, clientId, jkt, end}`, `PXAT` the end of its idle time.
 * - `quota:sessions:{all,sub:<sub>,client:<client_id>}`: sorted sets of `[id, sub, client_id]`
 *   (JSON), scored by the session's idle deadline in microseconds (a later use, a higher score,
 *   so the lowest is the least recently used); `quota:sessions:holders` counts each
 *   subject's sessions, to find the biggest holder when the store is full.
 *
 * @module
 */

import { createHash } from 'node:crypto'

/** A script and its SHA-1, for `EVALSHA` (sent in full with `EVAL` only when Redis lacks it). */
export interface Script {
  readonly body: string
  readonly sha: string
}

function script(body: string): Script {
  return { body, sha: createHash('sha1').update(body).digest('hex') }
}

const NOW = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Microseconds (exact in a double until the year 2255): session indexes are scored with them,
-- so that two uses in the same millisecond still have an order (least recently used first).
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

/**
 * ARGV: prefix, key, expiresAt (ms, integer), hasOwner ('1'|'0'), sub, clientId, maxPerSubject,
 * maxPerClient, maxEntries. Answers {0} seen, {1} recorded, {2, ms} subject over quota, {3, ms}
 * client over quota (ms until its oldest entry expires), {4} store full. Never drops an
 * unexpired entry: a full store or quota only refuses the new one.
 */
export const CONSUME = script(`
local p, name, at = ARGV[1], ARGV[2], tonumber(ARGV[3])
local entry = p .. 'replay:' .. name
if redis.call('EXISTS', entry) == 1 then return {0} end
${NOW}
-- An index member counts while its entry lives: until and including its expiry.
local function live(index)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. string.format('%.0f', now))
  return redis.call('ZCARD', index)
end
local function soonest(index)
  local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  return math.max(0, tonumber(first[2]) - now)
end
local all = p .. 'quota:replay:all'
if live(all) >= tonumber(ARGV[9]) then return {4} end
local sub, client
if ARGV[4] == '1' then
  sub = p .. 'quota:replay:sub:' .. ARGV[5]
  client = p .. 'quota:replay:client:' .. ARGV[6]
  if live(sub) >= tonumber(ARGV[7]) then return {2, soonest(sub)} end
  if live(client) >= tonumber(ARGV[8]) then return {3, soonest(client)} end
end
redis.call('SET', entry, '1', 'PXAT', ARGV[3])
local function track(index)
  redis.call('ZADD', index, at, name)
  local ttl = redis.call('PTTL', index)
  if ttl < 0 or now + ttl < at then redis.call('PEXPIREAT', index, ARGV[3]) end
end
track(all)
if sub then
  track(sub)
  track(client)
end
return {1}
`)

/** Shared by the session scripts: index names, and forgetting one session everywhere. */
const SESSION_COMMON = `
local p = ARGV[1]
local all = p .. 'quota:sessions:all'
local holders = p .. 'quota:sessions:holders'
local function subIndex(s) return p .. 'quota:sessions:sub:' .. s end
local function clientIndex(c) return p .. 'quota:sessions:client:' .. c end
local function member(id, s, c) return cjson.encode({id, s, c}) end
local function forget(m)
  redis.call('ZREM', all, m)
  local ok, e = pcall(cjson.decode, m)
  if not ok or type(e) ~= 'table' or type(e[1]) ~= 'string' or type(e[2]) ~= 'string'
    or type(e[3]) ~= 'string' then return end
  if redis.call('ZREM', subIndex(e[2]), m) == 1 then
    if tonumber(redis.call('ZINCRBY', holders, -1, e[2])) <= 0 then
      redis.call('ZREM', holders, e[2])
    end
  end
  redis.call('ZREM', clientIndex(e[3]), m)
  redis.call('DEL', p .. 'session:' .. e[1])
end
local function owner(v)
  local ok, e = pcall(cjson.decode, v)
  if ok and type(e) == 'table' and type(e.sub) == 'string' and type(e.clientId) == 'string'
    and type(e['end']) == 'number' then return e end
  return nil
end
`

/**
 * ARGV: prefix, id, sub, clientId, jkt, lifetime ms, idle ms, maxSessions, maxPerSubject,
 * maxPerClient (0: none). Answers {0} the id exists, {1} created, {2, ms} subject over quota,
 * {3, ms} client over quota, {4, ms} full and this subject holds as many as anyone (ms until its
 * least recently used session idles out). When full, the least recently used session of the
 * biggest other holder is evicted to make room.
 */
export const CREATE_SESSION = script(`
${SESSION_COMMON}
local id, sub, client, jkt = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lifetime, idle = tonumber(ARGV[6]), tonumber(ARGV[7])
local maxAll, maxSub, maxClient = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local key = p .. 'session:' .. id
if redis.call('EXISTS', key) == 1 then return {0} end
${NOW}
-- Expired sessions leave the indexes here, a bounded number per call (each call adds one).
local function purge(index)
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. string.format('%.0f', nowUs), 'LIMIT', 0, 100)
  for _, m in ipairs(gone) do forget(m) end
end
local function soonest(index)
  local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  if first[2] == nil then return idle end
  return math.max(0, math.floor((tonumber(first[2]) - nowUs) / 1000))
end
purge(all)
local mine = subIndex(sub)
purge(mine)
local held = redis.call('ZCARD', mine)
if held >= maxSub then return {2, soonest(mine)} end
if maxClient > 0 then
  purge(clientIndex(client))
  if redis.call('ZCARD', clientIndex(client)) >= maxClient then
    return {3, soonest(clientIndex(client))}
  end
end
if redis.call('ZCARD', all) >= maxAll then
  local top = redis.call('ZREVRANGE', holders, 0, 1, 'WITHSCORES')
  local other, most = nil, 0
  for i = 1, #top, 2 do
    if top[i] ~= sub then
      other, most = top[i], tonumber(top[i + 1])
      break
    end
  end
  if other == nil or held >= most then return {4, soonest(mine)} end
  local victim = redis.call('ZRANGE', subIndex(other), 0, 0)[1]
  if victim == nil then
    redis.call('ZREM', holders, other)
    return {4, soonest(mine)}
  end
  forget(victim)
end
local ends = now + lifetime
local deadline = math.min(nowUs + idle * 1000, ends * 1000)
redis.call('SET', key, cjson.encode({sub = sub, clientId = client, jkt = jkt, ['end'] = ends}),
  'PXAT', math.floor(deadline / 1000))
local m = member(id, sub, client)
redis.call('ZADD', all, deadline, m)
redis.call('ZADD', mine, deadline, m)
if maxClient > 0 then redis.call('ZADD', clientIndex(client), deadline, m) end
redis.call('ZINCRBY', holders, 1, sub)
return {1}
`)

/**
 * ARGV: prefix, id, idle ms. Answers the session's JSON (or nil), and renews its idle time
 * (never past its lifetime) in the key and in every index. An entry it did not write is answered
 * as it is, untouched, for the caller to refuse.
 */
export const TOUCH_SESSION = script(`
${SESSION_COMMON}
local id, idle = ARGV[2], tonumber(ARGV[3])
local key = p .. 'session:' .. id
local v = redis.call('GET', key)
if not v then return false end
local e = owner(v)
if e == nil then return v end
${NOW}
local deadline = math.min(nowUs + idle * 1000, e['end'] * 1000)
redis.call('PEXPIREAT', key, math.floor(deadline / 1000))
local m = member(id, e.sub, e.clientId)
redis.call('ZADD', all, 'XX', deadline, m)
redis.call('ZADD', subIndex(e.sub), 'XX', deadline, m)
redis.call('ZADD', clientIndex(e.clientId), 'XX', deadline, m)
return v
`)

/** ARGV: prefix, id. Ends the session and takes it out of every index. */
export const DELETE_SESSION = script(`
${SESSION_COMMON}
local key = p .. 'session:' .. ARGV[2]
local v = redis.call('GET', key)
if not v then return 0 end
local e = owner(v)
if e ~= nil then forget(member(ARGV[2], e.sub, e.clientId)) end
redis.call('DEL', key)
return 1
`)
