-- A Herald stream (STREAM.*) on the Redis engine (remote/stream.rs). One stream's keys share one hash tag:
--   KEYS[1] the log (list of "<unix ms>:" .. data; the head's offset is next - length)
--   KEYS[2] meta (hash: next, bytes, closed, epoch, maxlen, maxage; absent: no stream)
--   KEYS[3] the name's epoch counter (kept across deletes, so a re-created stream never repeats an epoch)
--   ARGV[1] the stream's wake-up channel   ARGV[2] default maxlen   ARGV[3] default maxage (ms)
--   ARGV[4] the operation:
--     write data | read from count epoch('' none) | close | info | config maxlen maxage ('' unchanged) | del
-- Retention trims from the front on write, read and config, on Redis's clock, as on the embedded engine.
local log, meta, epochs = KEYS[1], KEYS[2], KEYS[3]
local wake, op = ARGV[1], ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function field(name)
  return tonumber(redis.call('HGET', meta, name) or '0')
end

local function exists()
  return redis.call('EXISTS', meta) == 1
end

local function create()
  if exists() then return end
  local epoch = redis.call('INCR', epochs)
  redis.call('HSET', meta, 'next', 0, 'bytes', 0, 'closed', 0, 'epoch', epoch, 'maxlen', ARGV[2], 'maxage', ARGV[3])
end

local function trim()
  local maxlen, maxage = field('maxlen'), field('maxage')
  if maxlen == 0 and maxage == 0 then return end
  local dropped = 0
  while true do
    local n = redis.call('LLEN', log)
    if n == 0 then break end
    local drop = maxlen > 0 and n > maxlen
    if not drop and maxage > 0 then
      drop = tonumber(string.match(redis.call('LINDEX', log, 0), '^(%d+):')) + maxage <= now
    end
    if not drop then break end
    local head = redis.call('LPOP', log)
    dropped = dropped + #head - #string.match(head, '^(%d+):') - 1
  end
  if dropped > 0 then redis.call('HINCRBY', meta, 'bytes', -dropped) end
end

if op == 'write' then
  create()
  if field('closed') == 1 then return redis.error_reply('CLOSED the stream is closed; no more entries can be written') end
  local offset = field('next')
  redis.call('RPUSH', log, now .. ':' .. ARGV[5])
  redis.call('HSET', meta, 'next', offset + 1)
  redis.call('HINCRBY', meta, 'bytes', #ARGV[5])
  trim()
  redis.call('PUBLISH', wake, '')
  return offset
elseif op == 'read' then
  -- {'missing'}, or {epoch, next, ended, offset, data, offset, data ...}
  if not exists() then return { 'missing' } end
  local epoch = field('epoch')
  if ARGV[7] ~= '' and tonumber(ARGV[7]) ~= epoch then
    return redis.error_reply('STALE the stream was re-created (epoch ' .. epoch .. '); read it again from the start')
  end
  trim()
  local from, count, nxt = tonumber(ARGV[5]), tonumber(ARGV[6]), field('next')
  local first = nxt - redis.call('LLEN', log)
  if from < first then
    return redis.error_reply('TRIMMED offset ' .. ARGV[5] .. ' is no longer retained; the oldest retained offset is ' .. first)
  end
  local out = { epoch, 0, 0 }
  local rows = redis.call('LRANGE', log, from - first, from - first + count - 1)
  local next = math.min(math.max(from, first), nxt)
  for i, row in ipairs(rows) do
    local at = string.match(row, '^(%d+):')
    out[#out + 1] = from + i - 1
    out[#out + 1] = string.sub(row, #at + 2)
    next = from + i
  end
  out[2] = next
  if field('closed') == 1 and next >= nxt then out[3] = 1 end
  return out
elseif op == 'close' then
  create()
  redis.call('PUBLISH', wake, '')
  if field('closed') == 1 then return 0 end
  redis.call('HSET', meta, 'closed', 1)
  return 1
elseif op == 'info' then
  if not exists() then return false end
  local n = redis.call('LLEN', log)
  return { n, field('next') - n, field('next'), field('bytes'), field('closed'), field('epoch'), field('maxlen'), field('maxage') }
elseif op == 'config' then
  create()
  if ARGV[5] ~= '' then redis.call('HSET', meta, 'maxlen', ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('HSET', meta, 'maxage', ARGV[6]) end
  trim()
  return 'OK'
elseif op == 'del' then
  if not exists() then return 0 end
  redis.call('DEL', log, meta)
  redis.call('PUBLISH', wake, '')
  return 1
end
return redis.error_reply('ERR unknown stream operation')
