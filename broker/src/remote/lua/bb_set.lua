-- BB.SET scope key value [PX ms | KEEPTTL] [IFREV rev | NX | XX]
--   ARGV[3] key  ARGV[4] value  ARGV[5] "none" | "keep" | ms  ARGV[6] "always" | "nx" | "xx" | revision
-- Replies the new revision, or {"conflict", current revision}.
reap(100)
local key, value, ttl, cond = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local _, due = deadline(key)
if due then expire(key) end
local cur = revision(key)
local allowed
if cond == 'always' then allowed = true
elseif cond == 'nx' then allowed = cur == 0
elseif cond == 'xx' then allowed = cur ~= 0
else allowed = cur == tonumber(cond) end
if not allowed then
  return {'conflict', cur}
end
local new = cur + 1
redis.call('HSET', vals, key, value)
redis.call('HSET', revs, key, new)
local at = 0
if ttl == 'none' then
  redis.call('ZREM', dls, key)
elseif ttl == 'keep' then
  at = deadline(key)
else
  at = now + tonumber(ttl)
  redis.call('ZADD', dls, at, key)
end
emit('set', key, new, at, value)
return new
