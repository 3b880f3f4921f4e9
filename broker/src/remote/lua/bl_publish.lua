-- BL.PUBLISH: ARGV[A] the JSON text, ARGV[A+1] TTL ms ('' none), ARGV[A+2] the waiter marker's lifetime
-- when the publisher waits for room ('0': it does not). Replies the id, {'wait'} when the board is full
-- and the publisher waits, or -FULL.
local text, ttl, block = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local c = redis.call('HMGET', meta, 'maxlen', 'overflow')
local maxlen, overflow = tonumber(c[1] or def_maxlen), c[2] or 'reject-new'
if maxlen > 0 and redis.call('ZCARD', order) >= maxlen then
  if overflow == 'reject-new' then
    if block and block ~= '0' then
      waiting(block)
      return { 'wait' }
    end
    return redis.error_reply('FULL the board is at its MAXLEN')
  end
  local oldest = redis.call('ZRANGE', order, 0, 0)[1]
  local it = load(oldest)
  event('dropped', it)
  take(it)
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local id = now .. '-' .. seq
local it = { id = id, seq = seq, published = now, failed = 0, token = 0, lease = 0, ttl = 0, dead = false }
if ttl ~= '' then
  it.ttl = now + tonumber(ttl)
  redis.call('ZADD', dls, it.ttl, 'T:' .. id)
end
redis.call('HSET', raw, id, text)
it.text = text
save(it)
redis.call('ZADD', order, seq, id)
redis.call('ZADD', avail, seq, id)
event('publish', it)
wakeup()
return id
