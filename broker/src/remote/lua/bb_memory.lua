-- BB.MEMORY scope key samples: what the key costs in Redis, in bytes, or nil (absent, or past its deadline).
-- A scope's keys are fields of its hashes, which MEMORY USAGE measures as a whole; the key's answer is its
-- share of the scope's `MEMORY USAGE` (values, revisions, deadlines; SAMPLES as given), in proportion to
-- its own bytes (key and value) among the scope's, which are sampled as MEMORY USAGE samples (`samples`
-- fields at random, every field for 0). Read only: nothing is reaped or counted.
local key, samples = ARGV[3], tonumber(ARGV[4])
local _, due = deadline(key)
local v = not due and redis.call('HGET', vals, key)
if not v then return false end
local usage = 0
for _, k in ipairs({ vals, revs, dls }) do
  usage = usage + (redis.call('MEMORY', 'USAGE', k, 'SAMPLES', samples) or 0)
end
local n = redis.call('HLEN', vals)
local fields
if samples == 0 or samples >= n then
  fields = redis.call('HKEYS', vals)
else
  fields = redis.call('HRANDFIELD', vals, samples)
end
local sampled = 0
for _, f in ipairs(fields) do
  sampled = sampled + #f + redis.call('HSTRLEN', vals, f)
end
local own = #key + #v
local all = math.max(sampled * n / math.max(#fields, 1), own)
return math.floor(usage * own / all)
