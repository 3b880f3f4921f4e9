-- BB.DEL scope key [key ...] (ARGV[3..]): how many existed; each a `del` change with the value it held.
reap(100)
local n = 0
for i = 3, #ARGV do
  local key = ARGV[i]
  local v = redis.call('HGET', vals, key)
  if v then
    local r = tonumber(redis.call('HGET', revs, key) or '0')
    redis.call('HDEL', vals, key)
    redis.call('HDEL', revs, key)
    redis.call('ZREM', dls, key)
    emit('del', key, r, 0, v)
    n = n + 1
  end
end
return n
