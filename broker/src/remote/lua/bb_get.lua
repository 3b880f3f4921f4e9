-- BB.GET scope key (and BB.HAS, BB.WAIT's checks): {value, revision, ttl ms (-1: none)} or nil. Writes only
-- BB.STATS's counters (a scope that never had a change has none, as on one node): a key past its deadline is
-- absent here and removed (with its event) by the next write or the sweep.
local key = ARGV[3]
local function count_get(hit)
  if redis.call('EXISTS', seqk) == 1 then
    redis.call('HINCRBY', stats, 'gets', 1)
    redis.call('HINCRBY', stats, hit and 'hits' or 'misses', 1)
  end
end
local d, due = deadline(key)
local v = not due and redis.call('HGET', vals, key)
count_get(v)
if not v then return false end
local ttl = -1
if d > 0 then ttl = d - now end
return {v, tonumber(redis.call('HGET', revs, key) or '0'), ttl}
