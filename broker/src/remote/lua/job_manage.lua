-- JOB.CANCEL / JOB.RETRY: ARGV[6] 'cancel' | 'retry'  [7] id.
-- Cancel replies 1 (cancelled) or 0 (already final); retry 'OK'.
local function main()
  local what, id = ARGV[6], ARGV[7]
  settle(id)
  local j = jk(id)
  local f = redis.call('HMGET', j, 'state', 'seq', 'epoch')
  if not f[1] then return redis.error_reply('NOJOB no such job') end
  if what == 'cancel' then
    if final(f[1]) then return 0 end
    redis.call('ZREM', ready, member(id, tonumber(f[2])))
    redis.call('HINCRBY', meta, 'cancelled', 1)
    finish(id, 'cancelled')
    notice('cancelled', id)
    return 1
  end
  if f[1] ~= 'dead' and f[1] ~= 'error' and f[1] ~= 'cancelled' then
    return redis.error_reply('ERR only dead, error or cancelled jobs can be retried')
  end
  -- A fresh chunk stream, with an epoch its readers can tell from the old one's.
  redis.call('HSET', j, 'attempt', 0, 'cnext', 0, 'cfirst', 0, 'closed', 0, 'epoch', tonumber(f[2]) + tonumber(f[3]) + 1)
  redis.call('HDEL', j, 'token', 'finished', 'result')
  redis.call('DEL', ck(id))
  redis.call('LREM', dead, 0, id)
  redis.call('HINCRBY', meta, 'open', 1)
  set_timer(id, nil)
  make_ready(id)
  notice('queued-retried', id)
  return 'OK'
end
