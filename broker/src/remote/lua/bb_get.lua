-- BB.GET scope key: {value, revision, ttl ms (-1: none)} or nil. Reads only: a key past its deadline is
-- absent here and removed (with its event) by the next write or the sweep.
local key = ARGV[3]
local d, due = deadline(key)
if due then return false end
local v = redis.call('HGET', vals, key)
if not v then return false end
local ttl = -1
if d > 0 then ttl = d - now end
return {v, tonumber(redis.call('HGET', revs, key) or '0'), ttl}
