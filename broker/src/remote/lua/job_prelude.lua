-- Shared by every job script on the Redis engine (remote/jobs.rs). One queue's keys share one hash tag,
-- `{herald:q:<queue>}`, so every script runs on one slot:
--   KEYS[1] meta (hash: seq, token, running, open, concurrency, paused and the counters)
--   KEYS[2] ready (zset: score -priority, member zero-padded seq .. id: highest priority, then FIFO)
--   KEYS[3] deadlines (zset id -> unix ms: a job's one pending deadline, as `timer` in its hash)
--   KEYS[4] dead letters (list of ids, oldest first)      KEYS[5] every job (zset id -> seq)
--   KEYS[6] ids removed, for the nodes' sweep to drop their id -> queue index entries (list)
--   KEYS[7] the waiter marker (exists while a blocked JOB.CLAIM or JOB.JOIN may wait: remote/wake.rs)
--   ARGV[1] the queue's notice channel  ARGV[2] the key prefix (jobs at prefix .. 'job:' .. id, their
--   chunks at prefix .. 'chunks:' .. id)  ARGV[3] a random number (jitter)  ARGV[4] chunks kept per job
--   ARGV[5] dead jobs kept per queue; the operation's own arguments from ARGV[6].
-- Time is Redis's own (TIME), the same for every node.
local meta, ready, due, dead, all, gone, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local channel, prefix, random = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_chunks, max_dead = tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local LEASE = 'LEASE the job is not held with this token (the lease expired or the job moved on)'
-- How many jobs became claimable (or slots freed) / whether the queue has nothing unfinished left: the
-- epilogue publishes one `wake` notice (with the count: that many blocked workers are woken, not all)
-- and one `drained` notice for the JOB.JOINs waiting, both only if a blocked claim or join marked the
-- queue (nothing else reads them; the job's own notices go out regardless).
local wake, drained = 0, false

-- A blocking claim or join that found nothing marks the queue waited on for `ms` ('0': nobody waits).
local function waiting(ms)
  ms = tonumber(ms or '0') or 0
  if ms > 0 then redis.call('SET', marker, '1', 'PX', ms) end
end

local function jk(id) return prefix .. 'job:' .. id end
local function ck(id) return prefix .. 'chunks:' .. id end
local function num(v) return tonumber(v or '0') or 0 end
local function member(id, seq) return string.format('%020d', seq) .. id end
local function active(s) return s == 'running' or s == 'streaming' end
local function final(s) return s == 'done' or s == 'error' or s == 'cancelled' or s == 'dead' end

-- One notice on the queue's channel, for every node: its followers' events and waiters.
-- "<event>:<attempt>:<state>:<deadline>:<offset>:<has data>:<id length>:" .. id .. data
-- `announce` takes the job's attempt, state and deadline from a script that has just written them;
-- `notice` reads them.
local function announce(event, id, attempt, state, timer, data, offset)
  local text = event .. ':' .. num(attempt) .. ':' .. (state or 'gone') .. ':' .. num(timer) .. ':' .. (offset or 0) .. ':'
    .. (data and '1' or '0') .. ':' .. #id .. ':' .. id .. (data or '')
  redis.call('PUBLISH', channel, text)
end

local function notice(event, id, data, offset)
  local f = redis.call('HMGET', jk(id), 'attempt', 'state', 'timer')
  announce(event, id, f[1], f[2], f[3], data, offset)
end

-- The job's one deadline (nil: none).
local function set_timer(id, at)
  if at then
    redis.call('ZADD', due, at, id)
    redis.call('HSET', jk(id), 'timer', at)
  else
    redis.call('ZREM', due, id)
    redis.call('HDEL', jk(id), 'timer')
  end
end

local function make_ready(id)
  local f = redis.call('HMGET', jk(id), 'priority', 'seq')
  redis.call('HSET', jk(id), 'state', 'queued')
  redis.call('HDEL', jk(id), 'run_at')
  redis.call('ZADD', ready, -tonumber(f[1]), member(id, tonumber(f[2])))
  wake = wake + 1
end

local function release_slot()
  local running = redis.call('HINCRBY', meta, 'running', -1)
  if running < 0 then redis.call('HSET', meta, 'running', 0) end
  if num(redis.call('HGET', meta, 'concurrency')) > 0 and redis.call('ZCARD', ready) > 0 then wake = wake + 1 end
end

local function closed_one()
  local open = redis.call('HINCRBY', meta, 'open', -1)
  if open <= 0 then
    redis.call('HSET', meta, 'open', 0)
    drained = true
  end
end

local function remove_job(id)
  notice('removed', id)
  local seq = redis.call('HGET', jk(id), 'seq')
  if seq then redis.call('ZREM', ready, member(id, tonumber(seq))) end
  redis.call('DEL', jk(id), ck(id))
  redis.call('ZREM', due, id)
  redis.call('ZREM', all, id)
  redis.call('RPUSH', gone, id)
  if redis.call('LLEN', gone) > 100000 then redis.call('LPOP', gone) end
end

-- The delay before the next attempt: fixed, or base * 2^(retries-1), capped at a day; with jitter a
-- uniform draw in [delay/2, delay] (the embedded engine's `Backoff::delay`).
local function backoff(j, attempt)
  local f = redis.call('HMGET', j, 'bkind', 'bbase', 'bjit')
  local base, retries = num(f[2]), math.max(attempt, 1)
  local delay = base
  if f[1] == 'e' then delay = base * 2 ^ math.min(retries - 1, 40) end
  delay = math.min(delay, 86400000)
  if f[3] == '1' and delay > 1 then
    local half = math.floor(delay / 2)
    delay = half + random % (delay - half + 1)
  end
  return delay
end

-- After a failed or lost attempt: retry after the backoff, or bury the job. The state it moved to.
local function retry_or_bury(id)
  local j = jk(id)
  local f = redis.call('HMGET', j, 'attempt', 'max')
  local attempt = num(f[1])
  if attempt < num(f[2]) then
    local delay = backoff(j, attempt)
    redis.call('HINCRBY', meta, 'retried', 1)
    if delay == 0 then
      make_ready(id)
      return 'queued'
    end
    redis.call('HSET', j, 'state', 'delayed', 'run_at', now + delay)
    set_timer(id, now + delay)
    return 'delayed'
  end
  redis.call('HSET', j, 'state', 'dead', 'finished', now, 'closed', 1)
  closed_one()
  redis.call('HINCRBY', meta, 'dead', 1)
  redis.call('RPUSH', dead, id)
  if max_dead > 0 and redis.call('LLEN', dead) > max_dead then
    remove_job(redis.call('LPOP', dead))
  end
  return 'dead'
end

-- Ends an attempt for good: frees the slot, closes the chunks, starts the result TTL (dead jobs stay).
local function finish(id, state)
  local j = jk(id)
  local f = redis.call('HMGET', j, 'state', 'ttl')
  redis.call('HSET', j, 'state', state, 'finished', now, 'closed', 1)
  if active(f[1]) then release_slot() end
  if not final(f[1]) then closed_one() end
  if state ~= 'dead' then set_timer(id, now + num(f[2])) else set_timer(id, nil) end
end

-- One due deadline: a delayed job becomes claimable, an expired lease requeues (or buries) its job,
-- a finished job past its result TTL is dropped.
local function run_due(id)
  redis.call('ZREM', due, id)
  local j = jk(id)
  local state = redis.call('HGET', j, 'state')
  if not state then return end
  redis.call('HDEL', j, 'timer')
  if state == 'delayed' then
    make_ready(id)
    notice('queued', id)
  elseif active(state) then
    redis.call('HDEL', j, 'token')
    redis.call('HINCRBY', meta, 'lease_expired', 1)
    release_slot()
    retry_or_bury(id)
    notice('lease-expired', id)
  elseif final(state) and state ~= 'dead' then
    remove_job(id)
  end
end

local function reap(limit)
  local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do run_due(id) end
  return #ids
end

-- The job's own deadline first if it has passed (a lease is never held past its expiry).
local function settle(id)
  local at = redis.call('ZSCORE', due, id)
  if at and tonumber(at) <= now then run_due(id) end
end

-- Whether the job is held under `token`: nil and its fields {state, token, ttl, seq, attempt, lease_ms,
-- timer} (read once here for the operation that follows), or the error saying why not (the embedded
-- engine's `held`).
local function held(id, token)
  settle(id)
  local f = redis.call('HMGET', jk(id), 'state', 'token', 'ttl', 'seq', 'attempt', 'lease_ms', 'timer')
  if not f[1] then return redis.error_reply('NOJOB no such job') end
  local same = f[2] ~= false and f[2] == token
  if f[1] == 'cancelled' and same then return redis.error_reply('CANCELLED the job was cancelled') end
  if not active(f[1]) or not same then return redis.error_reply(LEASE) end
  return nil, f
end

-- Completes a job `held` has just vouched for (`f` its fields): the result, the slot, the result TTL and
-- the `done` notice, which carries the result and, in its offset field, the job's seq: a node's blocked
-- JOB.RESULT takes it from there instead of reading it again (remote/jobs.rs). `finish` in one write.
local function complete(id, value, f)
  local j = jk(id)
  local at = now + num(f[3])
  if value then
    redis.call('HSET', j, 'result', value, 'state', 'done', 'finished', now, 'closed', 1, 'timer', at)
    redis.call('HDEL', j, 'token')
  else
    redis.call('HSET', j, 'state', 'done', 'finished', now, 'closed', 1, 'timer', at)
    redis.call('HDEL', j, 'token', 'result')
  end
  redis.call('ZADD', due, at, id)
  release_slot()
  closed_one()
  redis.call('HINCRBY', meta, 'completed', 1)
  announce('done', id, f[5], 'done', at, value, f[4])
end
