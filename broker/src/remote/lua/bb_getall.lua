-- BB.GETALL scope [pattern] and BB.KEYS scope [pattern]: ARGV[3] the glob pattern ("" for every key),
-- matched by Redis's own HSCAN MATCH. Replies {last seq, {{key, value, revision, ttl} ...}}: the state
-- and the log position it reflects, read in one step (the re-read after LOST). Reads only.
local pattern = ARGV[3]
local out, seen = {}, {}
local cursor = '0'
repeat
  local r
  if pattern == '' then
    r = redis.call('HSCAN', vals, cursor, 'COUNT', 1000)
  else
    r = redis.call('HSCAN', vals, cursor, 'MATCH', pattern, 'COUNT', 1000)
  end
  cursor = r[1]
  local kv = r[2]
  for i = 1, #kv, 2 do
    local key = kv[i]
    local d, due = deadline(key)
    if not due and not seen[key] then
      seen[key] = true
      local ttl = -1
      if d > 0 then ttl = d - now end
      out[#out + 1] = {key, kv[i + 1], tonumber(redis.call('HGET', revs, key) or '0'), ttl}
    end
  end
until cursor == '0'
return {tonumber(redis.call('GET', seqk) or '0'), out}
