-- A semaphore on the Redis engine (remote/semaphore.rs). One semaphore's keys share one hash tag:
--   KEYS[1] holders (sorted set: token -> lease end, unix ms)   KEYS[2] meta (hash: permits, fence)
--   KEYS[3] the waiter marker (exists while a blocked acquirer may wait: remote/wake.rs)
--   ARGV[1] the semaphore's wake-up channel   ARGV[2] the operation
--     acquire permits lease-ms mark floor (mark: the waiter marker's lifetime in ms when the acquirer
--     blocks, '0' when it does not; floor: `herald:sem:floor` as the node read it, tokens start above
--     it) | extend token ms | release token | info | sweep
-- Time is Redis's own (TIME). Every operation first frees the permits whose lease ended (at or before
-- now, as the embedded engine's timer does), so nothing ever reads a lapsed holder. `fence` (the last
-- token) outlives the holders: tokens of one semaphore only grow.
local holders, meta, marker = KEYS[1], KEYS[2], KEYS[3]
local wake, op = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A permit is free again: waiters on every node re-try (if any marked the semaphore); a semaphore
-- nobody holds forgets its size.
local function freed()
  if redis.call('ZCARD', holders) == 0 then
    redis.call('HDEL', meta, 'permits')
  end
  if redis.call('EXISTS', marker) == 1 then redis.call('PUBLISH', wake, '') end
end

if redis.call('ZREMRANGEBYSCORE', holders, '-inf', now) > 0 then
  freed()
end

local function not_held()
  return redis.error_reply('LEASE the permit is not held with this token (its lease ran out, it was released, or it never was)')
end

-- The next lease end (0: none), for the sweep's registry.
local function next_end()
  local first = redis.call('ZRANGE', holders, 0, 0, 'WITHSCORES')
  if #first == 0 then return 0 end
  return tonumber(first[2])
end

if op == 'acquire' then
  local permits, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
  redis.call('HSET', meta, 'permits', permits)
  if redis.call('ZCARD', holders) >= permits then
    local mark = tonumber(ARGV[5] or '0') or 0
    if mark > 0 then redis.call('SET', marker, '1', 'PX', mark) end
    return false
  end
  local floor = tonumber(ARGV[6] or '0') or 0
  if floor > 0 and tonumber(redis.call('HGET', meta, 'fence') or '0') < floor then redis.call('HSET', meta, 'fence', ARGV[6]) end
  local token = redis.call('HINCRBY', meta, 'fence', 1)
  local at = now + lease
  redis.call('ZADD', holders, at, token)
  return { token, at }
elseif op == 'extend' then
  local token, ms = ARGV[3], tonumber(ARGV[4])
  if not redis.call('ZSCORE', holders, token) then return not_held() end
  local at = now + ms
  redis.call('ZADD', holders, 'XX', at, token)
  return at
elseif op == 'release' then
  if redis.call('ZREM', holders, ARGV[3]) == 0 then return not_held() end
  freed()
  return 1
elseif op == 'info' then
  local permits = tonumber(redis.call('HGET', meta, 'permits') or '0')
  local fence = tonumber(redis.call('HGET', meta, 'fence') or '0')
  return { permits, fence, redis.call('ZRANGE', holders, 0, -1, 'WITHSCORES') }
elseif op == 'sweep' then
  return next_end()
end
return redis.error_reply('ERR unknown semaphore operation')
