-- Sets KEYS[1] to ARGV[1] unless it holds a value already, and appends ARGV[2] to the list KEYS[2]:
-- one atomic step, run with redis-cli --eval.
local set = redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('RPUSH', KEYS[2], ARGV[2])
return {set and 1 or 0, redis.call('LLEN', KEYS[2])}
