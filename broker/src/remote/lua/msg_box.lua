-- A mailbox on the Redis engine (remote/mailbox.rs). One destination's keys share one hash tag:
--   KEYS[1] meta (hash: seq, len, maxlen)   KEYS[2] idempotency keys (hash key -> id)
--   KEYS[3] their order (list, oldest first)   KEYS[4] the topic's queue (list of "<id>:<deadline>:" .. payload)
--   KEYS[5] the queues holding messages (set of queue key names, for MSG.DESTS)
--   KEYS[6] the waiter marker (exists while a blocked receiver or sender may wait: remote/wake.rs)
--   ARGV[1] the destination's wake-up channel   ARGV[2] mailboxes.max_messages   ARGV[3] the operation
--     send payload idempotency-key('' none) keys-kept request-id('' a plain message) deadline(0 plain) mark
--     recv mark | len all|topic (every topic's messages, or KEYS[4]'s) | config maxlen
--     (mark: the waiter marker's lifetime in ms when the caller blocks, '0' when it does not)
--     summary (MSG.DESTS: {len, own maxlen (0: none), {queue key, length, ...}})
-- A request carries its requester's deadline (unix ms, Redis's clock): a receiver that reaches it later
-- drops it unread, as on the embedded engine.
local meta, idem, idemq, queue, queues, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local wake, default_max, op = ARGV[1], tonumber(ARGV[2]), ARGV[3]

-- Redis's clock (unix ms), read only by the operations that need it.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Wakes the destination's waiters on every node, if any marked it.
local function wakeup()
  if redis.call('EXISTS', marker) == 1 then redis.call('PUBLISH', wake, '') end
end

-- A blocking attempt that found nothing marks the destination waited on for `ms` ('0': nobody waits).
local function waiting(ms)
  ms = tonumber(ms or '0') or 0
  if ms > 0 then redis.call('SET', marker, '1', 'PX', ms) end
end

local function len()
  return tonumber(redis.call('HGET', meta, 'len') or '0')
end

if op == 'send' then
  local payload, key, keep, reqid, deadline = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
  if key ~= '' then
    local id = redis.call('HGET', idem, key)
    if id then return { tonumber(id), 0 } end
  end
  local m = redis.call('HMGET', meta, 'maxlen', 'len')
  local bound = tonumber(m[1] or '0')
  if bound == 0 then bound = default_max end
  if tonumber(m[2] or '0') >= bound then
    waiting(ARGV[9])
    return redis.error_reply('FULL the mailbox is at its MAXLEN (MSG.CONFIG) or mailboxes.max_messages')
  end
  local id
  if reqid ~= '' then id = tonumber(reqid) else id = redis.call('HINCRBY', meta, 'seq', 1) end
  redis.call('RPUSH', queue, string.format('%d:%s:', id, deadline) .. payload)
  redis.call('SADD', queues, queue)
  redis.call('HINCRBY', meta, 'len', 1)
  if key ~= '' and keep > 0 then
    redis.call('HSET', idem, key, id)
    redis.call('RPUSH', idemq, key)
    while redis.call('LLEN', idemq) > keep do
      redis.call('HDEL', idem, redis.call('LPOP', idemq))
    end
  end
  wakeup()
  return { id, 1 }
elseif op == 'recv' then
  -- {requests dropped unread} when empty, else {dropped, id, is request, payload}.
  local dropped = 0
  while true do
    local m = redis.call('LPOP', queue)
    if not m then
      waiting(ARGV[4])
      return { dropped }
    end
    if redis.call('LLEN', queue) == 0 then redis.call('SREM', queues, queue) end
    redis.call('HINCRBY', meta, 'len', -1)
    wakeup()
    local id, deadline = string.match(m, '^(%d+):(%d+):')
    local payload = string.sub(m, #id + #deadline + 3)
    deadline = tonumber(deadline)
    if deadline == 0 then return { dropped, id, 0, payload } end
    if deadline > clock() then return { dropped, id, 1, payload } end
    -- A request whose requester stopped waiting: dropped unread.
    dropped = dropped + 1
  end
elseif op == 'len' then
  if ARGV[4] == 'all' then return len() end
  return redis.call('LLEN', queue)
elseif op == 'summary' then
  local topics = {}
  for _, q in ipairs(redis.call('SMEMBERS', queues)) do
    local n = redis.call('LLEN', q)
    if n > 0 then
      topics[#topics + 1] = q
      topics[#topics + 1] = n
    end
  end
  return { len(), tonumber(redis.call('HGET', meta, 'maxlen') or '0'), topics }
elseif op == 'config' then
  redis.call('HSET', meta, 'maxlen', ARGV[4])
  wakeup()
  return 'OK'
end
return redis.error_reply('ERR unknown mailbox operation')
