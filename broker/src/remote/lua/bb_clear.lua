-- BB.CLEAR scope: every live key deleted, each a `del` change with the value it held (those already past
-- their deadline expire first, with their `expire` change, as a read would find them); replies how many
-- were deleted.
reap(1000000000)
local all = redis.call('HGETALL', vals)
local n = 0
for i = 1, #all, 2 do
  local key = all[i]
  local r = tonumber(redis.call('HGET', revs, key) or '0')
  redis.call('HDEL', vals, key)
  redis.call('HDEL', revs, key)
  redis.call('ZREM', dls, key)
  emit('del', key, r, 0, all[i + 1])
  n = n + 1
end
return n
