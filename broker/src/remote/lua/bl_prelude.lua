-- Shared by every bulletin-board script on the Redis engine (remote/bulletin.rs). One board's keys
-- share one hash tag, so every script runs on one slot:
--   KEYS[1] order (zset id -> seq: every live item, publish order)   KEYS[2] avail (zset: not leased)
--   KEYS[3] raw (hash id -> JSON text)     KEYS[4] info (hash id -> "seq:published:failed:token:lease:ttl:dead")
--   KEYS[5] deadlines (zset "L:<id>" lease end / "T:<id>" TTL -> unix ms)
--   KEYS[6] dead letters (list of ids, oldest first)   KEYS[7] meta (hash: seq, token, maxlen, overflow, maxleases)
--   KEYS[8] the waiter marker (exists while a blocked retriever or publisher may wait: remote/wake.rs)
--   ARGV[1] the board's event channel   ARGV[2] its wake-up channel   ARGV[3] scope   ARGV[4] board
--   ARGV[5] default MAXLEN   ARGV[6] default MAXLEASES   ARGV[7] dead letters kept (0: all)
-- Time is Redis's own (TIME), the same for every node. Deadlines that are due are reaped at the start
-- of every script on the board, so nothing reads a lease or an item past its end.
local order, avail, raw, info, dls, dead, meta, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local events, wake, scope, board = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local def_maxlen, def_maxleases, max_dead = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local A = 8

local function load(id)
  local s = redis.call('HGET', info, id)
  if not s then return nil end
  local seq, pub, failed, token, lease, ttl, isdead = string.match(s, '^(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(%d)$')
  return { id = id, seq = tonumber(seq), published = tonumber(pub), failed = tonumber(failed), token = tonumber(token),
           lease = tonumber(lease), ttl = tonumber(ttl), dead = isdead == '1' }
end

local function save(it)
  redis.call('HSET', info, it.id, string.format('%d:%d:%d:%d:%d:%d:%d', it.seq, it.published, it.failed, it.token, it.lease, it.ttl,
    it.dead and 1 or 0))
end

local function config(field, default)
  local v = redis.call('HGET', meta, field)
  if v then return v end
  return default
end

-- The item's JSON text (false: gone), read once per script.
local function text_of(it)
  if it.text == nil then it.text = redis.call('HGET', raw, it.id) end
  return it.text
end

-- An item as the replies give it: id, item, published, failed_leases, token, lease_expires (0: not leased).
local function view(it)
  return { it.id, text_of(it), it.published, it.failed, it.token, it.lease }
end

-- The board's event, as the embedded engine renders it (keys in serde_json's order).
local function event(name, it)
  local text = text_of(it) or 'null'
  redis.call('PUBLISH', events, '{"board":' .. cjson.encode(board) .. ',"event":"' .. name .. '","failed_leases":' .. it.failed ..
    ',"id":' .. cjson.encode(it.id) .. ',"item":' .. text .. ',"scope":' .. cjson.encode(scope) .. '}')
end

-- Wakes the board's waiters on every node, if any marked it (the marker is read once per script).
local marked = nil
local function wakeup()
  if marked == nil then marked = redis.call('EXISTS', marker) == 1 end
  if marked then redis.call('PUBLISH', wake, '') end
end

-- A blocking attempt that found nothing marks the board waited on for `ms` ('0': nobody waits).
local function waiting(ms)
  ms = tonumber(ms or '0') or 0
  if ms > 0 then redis.call('SET', marker, '1', 'PX', ms) end
end

-- The item leaves the board (removed, expired, dropped).
local function take(it)
  redis.call('ZREM', order, it.id)
  redis.call('ZREM', avail, it.id)
  redis.call('ZREM', dls, 'L:' .. it.id, 'T:' .. it.id)
  redis.call('HDEL', raw, it.id)
  redis.call('HDEL', info, it.id)
end

-- A lease ended without a remove (released or run out): back to the board, or to the dead letters
-- after MAXLEASES failed leases. An item whose TTL ran out under the lease (its `T:` deadline was
-- reaped while it was leased) expires instead; one whose TTL is ahead gets its deadline back.
local function end_lease(it, name)
  redis.call('ZREM', dls, 'L:' .. it.id)
  it.token, it.lease, it.failed = 0, 0, it.failed + 1
  local maxleases = tonumber(config('maxleases', def_maxleases))
  if maxleases > 0 and it.failed >= maxleases then
    redis.call('ZREM', order, it.id)
    redis.call('ZREM', dls, 'T:' .. it.id)
    it.dead = true
    save(it)
    redis.call('RPUSH', dead, it.id)
    event('dead', it)
    if max_dead > 0 and redis.call('LLEN', dead) > max_dead then
      local old = redis.call('LPOP', dead)
      redis.call('HDEL', raw, old)
      redis.call('HDEL', info, old)
    end
  elseif it.ttl > 0 and it.ttl <= now then
    event('expire', it)
    take(it)
  else
    save(it)
    redis.call('ZADD', avail, it.seq, it.id)
    if it.ttl > 0 then redis.call('ZADD', dls, it.ttl, 'T:' .. it.id) end
    event(name, it)
  end
  wakeup()
end

-- Every deadline of the board that has passed (at most `limit`): leases return their items, items
-- past their TTL go (an item under a lease stays, as on the embedded engine).
local function reap(limit)
  local due = redis.call('ZRANGEBYSCORE', dls, '-inf', now, 'LIMIT', 0, limit)
  for _, m in ipairs(due) do
    redis.call('ZREM', dls, m)
    local kind, id = string.sub(m, 1, 1), string.sub(m, 3)
    local it = load(id)
    if it and not it.dead then
      if kind == 'L' and it.token > 0 and it.lease <= now then
        end_lease(it, 'lease-expired')
      elseif kind == 'T' and it.token == 0 and it.ttl > 0 and it.ttl <= now then
        event('expire', it)
        take(it)
        wakeup()
      end
    end
  end
  return #due
end

-- The locked item `id` under `token` (a string), or the embedded engine's error.
local function leased(id, token)
  local it = load(id)
  if not it or it.dead then return nil, redis.error_reply('NOITEM no such item') end
  if it.token == 0 or tostring(it.token) ~= token then
    return nil, redis.error_reply('LEASE the item is not locked with this token (the lease ended or was never this one)')
  end
  return it
end

reap(1000)
