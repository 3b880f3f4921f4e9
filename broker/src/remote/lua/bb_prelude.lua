-- Shared by every blackboard script on the Redis engine (remote/blackboard.rs). One scope's keys share
-- one hash tag, so every script runs on one slot:
--   KEYS[1] values (hash key -> value)      KEYS[2] revisions (hash key -> revision)
--   KEYS[3] deadlines (zset key -> unix ms)  KEYS[4] the change log (list of entries, oldest first)
--   KEYS[5] the log's last sequence number (string)   KEYS[6] BB.STATS's counters (hash)
--   ARGV[1] the scope's notice channel        ARGV[2] entries the log keeps
-- Time is Redis's own (TIME), the same for every node.
local vals, revs, dls, log, seqk, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local channel, keep = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- BB.STATS's counter of each change.
local counted = { set = 'sets', del = 'deletes', expire = 'expired' }

-- One change: appended to the log with the next sequence number and published as a notice, in the
-- same step as the write, so a node that misses the notice finds the change in the log.
-- The entry: "<event>:<seq>:<revision>:<deadline>:<key length>:<has value>:" .. key .. value
local function emit(event, key, revision, deadline, value)
  local seq = redis.call('INCR', seqk)
  local entry = event .. ':' .. seq .. ':' .. revision .. ':' .. deadline .. ':' .. #key .. ':' .. (value and '1' or '0') .. ':' .. key .. (value or '')
  redis.call('RPUSH', log, entry)
  if keep > 0 and redis.call('LLEN', log) > keep then
    redis.call('LPOP', log)
  end
  redis.call('PUBLISH', channel, entry)
  redis.call('HINCRBY', stats, counted[event], 1)
  return seq
end

-- Removes a key whose deadline has passed, with its `expire` change (the value it held).
local function expire(key)
  local v = redis.call('HGET', vals, key)
  local r = tonumber(redis.call('HGET', revs, key) or '0')
  redis.call('HDEL', vals, key)
  redis.call('HDEL', revs, key)
  redis.call('ZREM', dls, key)
  emit('expire', key, r, 0, v)
end

-- Every key of the scope whose deadline has passed (at most `limit`), expired.
local function reap(limit)
  local due = redis.call('ZRANGEBYSCORE', dls, '-inf', now, 'LIMIT', 0, limit)
  for _, key in ipairs(due) do
    expire(key)
  end
  return #due
end

-- The key's deadline (0: none), and whether it has passed.
local function deadline(key)
  local d = redis.call('ZSCORE', dls, key)
  if not d then return 0, false end
  d = tonumber(d)
  return d, d <= now
end

-- The key's revision now (0: absent or expired).
local function revision(key)
  local _, due = deadline(key)
  if due then return 0 end
  return tonumber(redis.call('HGET', revs, key) or '0')
end
