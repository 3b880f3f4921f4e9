-- About one queue: ARGV[6] what, then
--   'concurrency' [7] n | 'pause' | 'resume': 'OK'
--   'list' [7] state ('' : any): ids in submission order    'dead': the dead-letter ids
--   'stats': {counts per state in the order of `states`, concurrency, paused, the counters}
--   'drained' [7] the waiter marker's lifetime when a JOB.JOIN waits ('0': none): 1 when nothing is
--   queued, delayed or running
--   'sweep' [7] at most this many deadlines: {the next deadline (0: none), ids removed ...}
local states = {'queued', 'delayed', 'running', 'streaming', 'done', 'error', 'cancelled', 'dead'}
local counters = {'submitted', 'claimed', 'completed', 'failed', 'retried', 'dead', 'cancelled', 'lease_expired'}
local function main()
  local what = ARGV[6]
  if what == 'sweep' then
    reap(tonumber(ARGV[7]))
    local out = {0}
    local next = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
    if #next > 0 then out[1] = tonumber(next[2]) end
    for _, id in ipairs(redis.call('LPOP', gone, 1000) or {}) do out[#out + 1] = id end
    return out
  end
  reap(100)
  if what == 'concurrency' or what == 'pause' or what == 'resume' then
    if what == 'concurrency' then
      redis.call('HSET', meta, 'concurrency', ARGV[7])
    else
      redis.call('HSET', meta, 'paused', what == 'pause' and 1 or 0)
    end
    wake = redis.call('ZCARD', ready)
    return 'OK'
  elseif what == 'drained' then
    if num(redis.call('HGET', meta, 'open')) == 0 then return 1 end
    waiting(ARGV[7])
    return 0
  elseif what == 'dead' then
    return redis.call('LRANGE', dead, 0, -1)
  end
  local counts, out = {}, {}
  for _, s in ipairs(states) do counts[s] = 0 end
  for _, id in ipairs(redis.call('ZRANGE', all, 0, -1)) do
    local s = redis.call('HGET', jk(id), 'state')
    if s then
      counts[s] = counts[s] + 1
      if what == 'list' and (ARGV[7] == '' or ARGV[7] == s) then out[#out + 1] = id end
    end
  end
  if what == 'list' then return out end
  for _, s in ipairs(states) do out[#out + 1] = counts[s] end
  local m = redis.call('HMGET', meta, 'concurrency', 'paused', unpack(counters))
  for i = 1, #m do out[#out + 1] = num(m[i]) end
  return out
end
