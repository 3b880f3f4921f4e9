-- BB.STATS scope: {keys, bytes (keys' and values' lengths), seq, sets, gets, hits, misses, deletes, expired}.
-- What is due expires first (with its changes), as the embedded engine's timer would have expired it; the
-- byte count reads every live key's length (one pass over the scope, as on one node).
reap(1000000000)
local keys = redis.call('HKEYS', vals)
local bytes = 0
for _, k in ipairs(keys) do
  bytes = bytes + #k + redis.call('HSTRLEN', vals, k)
end
local c = redis.call('HMGET', stats, 'sets', 'gets', 'hits', 'misses', 'deletes', 'expired')
local out = { #keys, bytes, tonumber(redis.call('GET', seqk) or '0') }
for i = 1, 6 do out[#out + 1] = tonumber(c[i] or '0') end
return out
