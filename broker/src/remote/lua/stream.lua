-- A Herald stream (STREAM.*) on the Redis engine (remote/stream.rs). One stream's keys share one hash tag:
--   KEYS[1] the log (list of "<unix ms>:" .. data; the head's offset is next - length)
--   KEYS[2] meta (hash: next, bytes, closed, epoch, maxlen, maxage; absent: no stream)
--   KEYS[3] the name's epoch counter (kept across deletes, so a re-created stream never repeats an epoch)
--   KEYS[4] the waiter marker (exists while a blocked reader may wait: remote/wake.rs)
--   ARGV[1] the stream's wake-up channel   ARGV[2] default maxlen   ARGV[3] default maxage (ms)
--   ARGV[4] the operation:
--     write data | read from count epoch('' none) mark (the waiter marker's lifetime in ms when the reader
--     blocks, '0' when it does not) | close | info | config maxlen maxage ('' unchanged) | del
-- Retention trims from the front on write, read and config, on Redis's clock, as on the embedded engine.
local log, meta, epochs, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wake, op = ARGV[1], ARGV[4]

-- Redis's clock (unix ms), read once and only by the operations that need it.
local now = nil
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end

-- Wakes the stream's blocked readers on every node, if any marked it.
local function wakeup()
  if redis.call('EXISTS', marker) == 1 then redis.call('PUBLISH', wake, '') end
end

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

-- Drops entries from the front past the bounds; the log's length after (`n`: its length, if known).
local function trim(maxlen, maxage, n)
  n = n or redis.call('LLEN', log)
  if maxlen == 0 and maxage == 0 then return n end
  local dropped = 0
  while n > 0 do
    local drop = maxlen > 0 and n > maxlen
    if not drop and maxage > 0 then
      drop = tonumber(string.match(redis.call('LINDEX', log, 0), '^(%d+):')) + maxage <= clock()
    end
    if not drop then break end
    local head = redis.call('LPOP', log)
    dropped = dropped + #head - #string.match(head, '^(%d+):') - 1
    n = n - 1
  end
  if dropped > 0 then redis.call('HINCRBY', meta, 'bytes', -dropped) end
  return n
end

if op == 'write' then
  -- The stream's fields in one read (created first if need be).
  local f = redis.call('HMGET', meta, 'closed', 'next', 'maxlen', 'maxage')
  if not f[2] then
    create()
    f = { '0', '0', ARGV[2], ARGV[3] }
  end
  if f[1] == '1' then return redis.error_reply('CLOSED the stream is closed; no more entries can be written') end
  local offset = tonumber(f[2])
  local n = redis.call('RPUSH', log, clock() .. ':' .. ARGV[5])
  redis.call('HSET', meta, 'next', offset + 1)
  redis.call('HINCRBY', meta, 'bytes', #ARGV[5])
  trim(tonumber(f[3]), tonumber(f[4]), n)
  wakeup()
  return offset
elseif op == 'read' then
  -- {'missing'}, or {epoch, next, ended, offset, data, offset, data ...}
  -- A blocking read that finds nothing new marks the stream waited on.
  local function waiting()
    local mark = tonumber(ARGV[8] or '0') or 0
    if mark > 0 then redis.call('SET', marker, '1', 'PX', mark) end
  end
  local f = redis.call('HMGET', meta, 'epoch', 'next', 'closed', 'maxlen', 'maxage')
  if not f[1] then
    waiting()
    return { 'missing' }
  end
  local epoch = tonumber(f[1])
  if ARGV[7] ~= '' and tonumber(ARGV[7]) ~= epoch then
    return redis.error_reply('STALE the stream was re-created (epoch ' .. epoch .. '); read it again from the start')
  end
  local from, count, nxt = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(f[2])
  local first = nxt - trim(tonumber(f[4]), tonumber(f[5]))
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
  if f[3] == '1' and next >= nxt then out[3] = 1 end
  if #rows == 0 and out[3] == 0 then waiting() end
  return out
elseif op == 'close' then
  create()
  wakeup()
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
  trim(field('maxlen'), field('maxage'))
  return 'OK'
elseif op == 'del' then
  if not exists() then return 0 end
  redis.call('DEL', log, meta)
  wakeup()
  return 1
end
return redis.error_reply('ERR unknown stream operation')
