-- The commands on one item or the board's state: ARGV[A] the operation, then its arguments.
--   get id | len | dead | extend id token ms | release id token | remove id token('' none)
--   redrive id | config maxlen overflow maxleases ('' unchanged) | sweep (replies the next deadline, 0: none)
--   summary (BL.BOARDS: {items, leased, dead, maxlen, overflow, maxleases})
local op = ARGV[A]
if op == 'get' then
  local it = load(ARGV[A + 1])
  if not it or it.dead then return false end
  return view(it)
elseif op == 'len' then
  return redis.call('ZCARD', order)
elseif op == 'dead' then
  local out = {}
  for _, id in ipairs(redis.call('LRANGE', dead, 0, -1)) do
    local it = load(id)
    if it then out[#out + 1] = view(it) end
  end
  return out
elseif op == 'extend' then
  local it, err = leased(ARGV[A + 1], ARGV[A + 2])
  if not it then return err end
  redis.call('ZREM', dls, 'L:' .. it.id)
  it.lease = now + tonumber(ARGV[A + 3])
  redis.call('ZADD', dls, it.lease, 'L:' .. it.id)
  save(it)
  return it.lease
elseif op == 'release' then
  local it, err = leased(ARGV[A + 1], ARGV[A + 2])
  if not it then return err end
  end_lease(it, 'release')
  return 'OK'
elseif op == 'remove' then
  local it = load(ARGV[A + 1])
  if not it or it.dead then return 0 end
  local token = ARGV[A + 2]
  if (it.token > 0 and tostring(it.token) ~= token) or (it.token == 0 and token ~= '') then
    return redis.error_reply('LEASE the item is not locked with this token (the lease ended or was never this one)')
  end
  event('remove', it)
  take(it)
  wakeup()
  return 1
elseif op == 'redrive' then
  local id = ARGV[A + 1]
  if redis.call('LREM', dead, 1, id) == 0 then return redis.error_reply('NOITEM no such item') end
  local it = load(id)
  it.dead, it.failed, it.token, it.lease = false, 0, 0, 0
  save(it)
  redis.call('ZADD', order, it.seq, id)
  redis.call('ZADD', avail, it.seq, id)
  wakeup()
  return 'OK'
elseif op == 'config' then
  if ARGV[A + 1] ~= '' then redis.call('HSET', meta, 'maxlen', ARGV[A + 1]) end
  if ARGV[A + 2] ~= '' then redis.call('HSET', meta, 'overflow', ARGV[A + 2]) end
  if ARGV[A + 3] ~= '' then redis.call('HSET', meta, 'maxleases', ARGV[A + 3]) end
  if redis.call('HEXISTS', meta, 'seq') == 0 then redis.call('HSET', meta, 'seq', 0) end
  wakeup()
  return 'OK'
elseif op == 'summary' then
  local items = redis.call('ZCARD', order)
  return { items, items - redis.call('ZCARD', avail), redis.call('LLEN', dead), tonumber(config('maxlen', def_maxlen)),
           config('overflow', 'reject-new'), tonumber(config('maxleases', def_maxleases)) }
elseif op == 'sweep' then
  local next = redis.call('ZRANGE', dls, 0, 0, 'WITHSCORES')
  if #next == 0 then return 0 end
  return tonumber(next[2])
end
return redis.error_reply('ERR unknown bulletin operation')
