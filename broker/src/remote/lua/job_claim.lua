-- JOB.CLAIM on one queue: ARGV[6] lease ms ('' : the job's own)  [7] the waiter marker's lifetime when
-- the worker blocks ('0': it does not)  [8] [9] [10] optional: the id, token and result of the worker's
-- previous job on this queue, completed first in the same script (JOB.CLAIM ... COMPLETE: its error is
-- the reply, and nothing is claimed). Replies {id, payload, attempt, token, lease ms}, or nil when the
-- queue is paused, at its concurrency limit or has nothing claimable.
local function claim()
  reap(100)
  local c = redis.call('HMGET', meta, 'paused', 'concurrency', 'running')
  if c[1] == '1' then return false end
  local limit = num(c[2])
  if limit > 0 and num(c[3]) >= limit then return false end
  local first = redis.call('ZRANGE', ready, 0, 0)
  if #first == 0 then return false end
  redis.call('ZREM', ready, first[1])
  local id = string.sub(first[1], 21)
  local j = jk(id)
  redis.call('HINCRBY', meta, 'running', 1)
  redis.call('HINCRBY', meta, 'claimed', 1)
  local token = redis.call('HINCRBY', meta, 'token', 1)
  local f = redis.call('HMGET', j, 'payload', 'lease_ms', 'cnext', 'started', 'attempt')
  local lease = tonumber(f[2])
  if ARGV[6] ~= '' then lease = tonumber(ARGV[6]) end
  local attempt = num(f[5]) + 1
  local state = 'running'
  if num(f[3]) > 0 then state = 'streaming' end
  local at = now + lease
  if f[4] then
    redis.call('HSET', j, 'attempt', attempt, 'state', state, 'token', token, 'lexp', at, 'timer', at)
  else
    redis.call('HSET', j, 'attempt', attempt, 'state', state, 'token', token, 'lexp', at, 'timer', at, 'started', now)
  end
  redis.call('ZADD', due, at, id)
  announce('claimed', id, attempt, state, at)
  return {id, f[1], attempt, token, lease}
end

local function main()
  if ARGV[8] then
    local e, f = held(ARGV[8], ARGV[9])
    if e then return e end
    complete(ARGV[8], ARGV[10], f)
  end
  local claimed = claim()
  if not claimed then waiting(ARGV[7]) end
  return claimed
end
