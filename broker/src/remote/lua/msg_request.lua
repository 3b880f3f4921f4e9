-- One request's state on the Redis engine (remote/mailbox.rs), under its own hash tag:
--   KEYS[1] the request (hash: state w(aiting) / r(eplied) / t(imed out), deadline, reply)
--   ARGV[1] the operation:
--     open timeout-ms grace-ms -> the deadline (unix ms, Redis's clock)
--     reply payload wake-channel -> 1 if the requester will get it, 0 if it came too late (dropped)
--     take -> {'r', reply} | {'t'} | {'w'}: the requester's view; a reply, once taken, ends it
-- One key, one state machine: a reply either reaches the requester or is refused as late, never both.
local req, op = KEYS[1], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', req, 'state')
local deadline = tonumber(redis.call('HGET', req, 'deadline') or '0')
if op == 'open' then
  deadline = now + tonumber(ARGV[2])
  redis.call('HSET', req, 'state', 'w', 'deadline', deadline)
  -- The key outlives the deadline a little (a requester on a node that died leaves nothing behind).
  redis.call('PEXPIRE', req, tonumber(ARGV[2]) + tonumber(ARGV[3]))
  return deadline
elseif op == 'reply' then
  if state ~= 'w' or now >= deadline then return 0 end
  redis.call('HSET', req, 'state', 'r', 'reply', ARGV[2])
  redis.call('PUBLISH', ARGV[3], '')
  return 1
elseif op == 'take' then
  if state == 'r' then
    local reply = redis.call('HGET', req, 'reply')
    redis.call('DEL', req)
    return { 'r', reply }
  end
  if state == 'w' and now < deadline then return { 'w' } end
  if state == 'w' then redis.call('HSET', req, 'state', 't') end
  return { 't' }
end
return redis.error_reply('ERR unknown request operation')
