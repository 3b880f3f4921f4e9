-- JOB.SUBMIT: ARGV[6] id  [7] payload  [8] priority  [9] delay ms  [10] attempts  [11] backoff kind
-- ('f' | 'e')  [12] backoff base ms  [13] jitter ('1' | '0')  [14] lease ms  [15] result TTL ms
-- [16] jobs the queue may hold. Replies {id, 1} (created) or {id, 0} (the id already names a job here).
local function main()
  reap(100)
  local id = ARGV[6]
  if redis.call('EXISTS', jk(id)) == 1 then return {id, 0} end
  if redis.call('ZCARD', all) >= tonumber(ARGV[16]) then return redis.error_reply('FULL too many jobs (jobs.max_jobs)') end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('HSET', jk(id), 'payload', ARGV[7], 'priority', ARGV[8], 'max', ARGV[10], 'bkind', ARGV[11], 'bbase', ARGV[12],
    'bjit', ARGV[13], 'lease_ms', ARGV[14], 'ttl', ARGV[15], 'attempt', 0, 'seq', seq, 'epoch', seq, 'created', now,
    'cnext', 0, 'cfirst', 0, 'closed', 0)
  redis.call('ZADD', all, seq, id)
  redis.call('HINCRBY', meta, 'submitted', 1)
  redis.call('HINCRBY', meta, 'open', 1)
  local delay = tonumber(ARGV[9])
  if delay > 0 then
    redis.call('HSET', jk(id), 'state', 'delayed', 'run_at', now + delay)
    set_timer(id, now + delay)
  else
    make_ready(id)
  end
  notice('submitted', id)
  return {id, 1}
end
