-- JOB.CLAIM on one queue: ARGV[6] lease ms ('' : the job's own)  [7] the waiter marker's lifetime when
-- the worker blocks ('0': it does not). Replies {id, payload, attempt, token, lease ms}, or nil when the
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
  local f = redis.call('HMGET', j, 'payload', 'lease_ms', 'cnext', 'started')
  local lease = tonumber(f[2])
  if ARGV[6] ~= '' then lease = tonumber(ARGV[6]) end
  local attempt = redis.call('HINCRBY', j, 'attempt', 1)
  local state = 'running'
  if num(f[3]) > 0 then state = 'streaming' end
  redis.call('HSET', j, 'state', state, 'token', token, 'lexp', now + lease)
  if not f[4] then redis.call('HSET', j, 'started', now) end
  set_timer(id, now + lease)
  notice('claimed', id)
  return {id, f[1], attempt, token, lease}
end

local function main()
  local claimed = claim()
  if not claimed then waiting(ARGV[7]) end
  return claimed
end
