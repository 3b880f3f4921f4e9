-- BB.CHANGES scope SINCE seq [COUNT n]: ARGV[3] since, ARGV[4] count.
-- Replies {last seq, entries after `since` (at most count)}, or {"lost", oldest retained seq}.
local since, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local last = tonumber(redis.call('GET', seqk) or '0')
local len = redis.call('LLEN', log)
local first = last - len + 1
if since + 1 < first and since < last then
  return {'lost', first}
end
if since >= last then return {last, {}} end
local from = since + 1 - first
return {last, redis.call('LRANGE', log, from, from + count - 1)}
