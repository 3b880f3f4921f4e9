-- JOB.SUBMIT: ARGV[6] id  [7] payload  [8] priority  [9] delay ms  [10] attempts  [11] backoff kind
-- ('f' | 'e')  [12] backoff base ms  [13] jitter ('1' | '0')  [14] lease ms  [15] result TTL ms
-- [16] jobs the queue may hold  [17] the queue's name. KEYS[8], when given (a fresh id, not under
-- Cluster: another slot), is the id's index key, written here with the job instead of in a command of
-- its own. Replies {id, 1, seq} (created: pending) or {id, 0} (the id already names a job here).
local function main()
  reap(100)
  local id = ARGV[6]
  local j = jk(id)
  if redis.call('EXISTS', j) == 1 then return {id, 0} end
  if redis.call('ZCARD', all) >= tonumber(ARGV[16]) then return redis.error_reply('FULL too many jobs (jobs.max_jobs)') end
  if KEYS[8] then redis.call('SET', KEYS[8], ARGV[17]) end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local delay = tonumber(ARGV[9])
  local state, at = 'queued', nil
  if delay > 0 then state, at = 'delayed', now + delay end
  redis.call('HSET', j, 'payload', ARGV[7], 'priority', ARGV[8], 'max', ARGV[10], 'bkind', ARGV[11], 'bbase', ARGV[12],
    'bjit', ARGV[13], 'lease_ms', ARGV[14], 'ttl', ARGV[15], 'attempt', 0, 'seq', seq, 'epoch', seq, 'created', now,
    'cnext', 0, 'cfirst', 0, 'closed', 0, 'state', state)
  redis.call('ZADD', all, seq, id)
  redis.call('HINCRBY', meta, 'submitted', 1)
  redis.call('HINCRBY', meta, 'open', 1)
  if at then
    redis.call('HSET', j, 'run_at', at, 'timer', at)
    redis.call('ZADD', due, at, id)
  else
    redis.call('ZADD', ready, -tonumber(ARGV[8]), member(id, seq))
    wake = wake + 1
  end
  announce('submitted', id, 0, state, at)
  return {id, 1, seq}
end
