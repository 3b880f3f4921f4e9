-- The periodic sweep of one scope: expires what is due (at most ARGV[3] keys), replies the next
-- deadline (0: none). Idempotent: every node may run it; what one expired the next finds gone.
reap(tonumber(ARGV[3]))
local next = redis.call('ZRANGE', dls, 0, 0, 'WITHSCORES')
if #next == 0 then return 0 end
return tonumber(next[2])
