-- Reads about one job: ARGV[6] what  [7] id, then
--   'status': {state, attempt, max, priority, progress, error, chunks, created, started, finished,
--              run_at, lease expiry (only while held)}
--   'result': {'done', result} | {final state, error} | {'pending', seq} (seq: which job of this id it is)
--   'chunks' [8] from [9] count: {'trimmed', first} | {epoch, ended, next, data ...} (data from `from`)
-- nil / NOJOB when the job does not exist.
local function main()
  local what, id = ARGV[6], ARGV[7]
  settle(id)
  local j = jk(id)
  if what == 'status' then
    local f = redis.call('HMGET', j, 'state', 'attempt', 'max', 'priority', 'progress', 'error', 'cnext', 'created', 'started',
      'finished', 'run_at', 'lexp', 'token')
    if not f[1] then return false end
    if not active(f[1]) or not f[13] then f[12] = false end
    f[13] = nil
    return f
  end
  local f = redis.call('HMGET', j, 'state', 'result', 'error', 'epoch', 'cfirst', 'cnext', 'closed', 'seq')
  if not f[1] then return redis.error_reply('NOJOB no such job') end
  if what == 'result' then
    if f[1] == 'done' then return {'done', f[2]} end
    if final(f[1]) then return {f[1], f[3]} end
    return {'pending', f[8]}
  end
  local from, count = tonumber(ARGV[8]), tonumber(ARGV[9])
  local first, next = tonumber(f[5]), tonumber(f[6])
  if from < first then return {'trimmed', first} end
  local data = redis.call('LRANGE', ck(id), from - first, from - first + count - 1)
  local upto = math.min(math.max(from, first), next)
  if #data > 0 then upto = from + #data end
  local out = {tonumber(f[4]), (f[7] == '1' and upto >= next) and 1 or 0, upto}
  for _, d in ipairs(data) do out[#out + 1] = d end
  return out
end
