-- What a worker does with the job it holds: ARGV[6] what ('heartbeat' | 'progress' | 'chunk' |
-- 'complete' | 'fail' | 'fail-noretry')  [7] id  [8] token  [9] the value (lease ms or '' for a
-- heartbeat; the progress value, chunk data or error; the result for complete, absent: none).
-- Replies: heartbeat the new expiry, chunk its offset, fail the state the job moved to, else 'OK'.
local function main()
  local what, id, token = ARGV[6], ARGV[7], ARGV[8]
  local e = held(id, token)
  if e then return e end
  local j = jk(id)
  local value = ARGV[9]
  if what == 'heartbeat' then
    local lease = num(redis.call('HGET', j, 'lease_ms'))
    if value ~= '' then lease = tonumber(value) end
    redis.call('HSET', j, 'lexp', now + lease)
    set_timer(id, now + lease)
    notice('heartbeat', id)
    return now + lease
  elseif what == 'progress' then
    redis.call('HSET', j, 'progress', value)
    notice('progress', id, value)
    return 'OK'
  elseif what == 'chunk' then
    local offset = redis.call('HINCRBY', j, 'cnext', 1) - 1
    redis.call('RPUSH', ck(id), value)
    if max_chunks > 0 and redis.call('LLEN', ck(id)) > max_chunks then
      redis.call('LPOP', ck(id))
      redis.call('HINCRBY', j, 'cfirst', 1)
    end
    redis.call('HSET', j, 'state', 'streaming')
    notice('chunk', id, value, offset)
    return offset
  elseif what == 'complete' then
    if value then redis.call('HSET', j, 'result', value) else redis.call('HDEL', j, 'result') end
    redis.call('HDEL', j, 'token')
    finish(id, 'done')
    redis.call('HINCRBY', meta, 'completed', 1)
    -- The notice carries the result and, in its offset field, the job's seq: a node's blocked JOB.RESULT
    -- takes it from there instead of reading it again (remote/jobs.rs).
    notice('done', id, value, redis.call('HGET', j, 'seq'))
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
