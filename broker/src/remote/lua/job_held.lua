-- What a worker does with the job it holds: ARGV[6] what ('heartbeat' | 'progress' | 'chunk' |
-- 'complete' | 'fail' | 'fail-noretry')  [7] id  [8] token  [9] the value (lease ms or '' for a
-- heartbeat; the progress value, chunk data or error; the result for complete, absent: none).
-- Replies: heartbeat the new expiry, chunk its offset, fail the state the job moved to, else 'OK'.
-- The job's fields come from `held`'s one read; a notice names what the script has just written.
local function main()
  local what, id, token = ARGV[6], ARGV[7], ARGV[8]
  local e, f = held(id, token)
  if e then return e end
  local j = jk(id)
  local value = ARGV[9]
  if what == 'heartbeat' then
    local lease = num(f[6])
    if value ~= '' then lease = tonumber(value) end
    local at = now + lease
    redis.call('HSET', j, 'lexp', at, 'timer', at)
    redis.call('ZADD', due, at, id)
    announce('heartbeat', id, f[5], f[1], at)
    return at
  elseif what == 'progress' then
    redis.call('HSET', j, 'progress', value)
    announce('progress', id, f[5], f[1], f[7], value)
    return 'OK'
  elseif what == 'chunk' then
    local offset = redis.call('HINCRBY', j, 'cnext', 1) - 1
    local len = redis.call('RPUSH', ck(id), value)
    if max_chunks > 0 and len > max_chunks then
      redis.call('LPOP', ck(id))
      redis.call('HINCRBY', j, 'cfirst', 1)
    end
    if f[1] ~= 'streaming' then redis.call('HSET', j, 'state', 'streaming') end
    announce('chunk', id, f[5], 'streaming', f[7], value, offset)
    return offset
  elseif what == 'complete' then
    complete(id, value, f)
    return 'OK'
  end
  -- fail
  redis.call('HSET', j, 'error', value)
  redis.call('HDEL', j, 'token')
  redis.call('HINCRBY', meta, 'failed', 1)
  local state
  if what == 'fail-noretry' then
    finish(id, 'error')
    state = 'error'
  else
    release_slot()
    state = retry_or_bury(id)
    if state == 'dead' then set_timer(id, nil) end
  end
  notice('failed', id, value)
  return state
end
