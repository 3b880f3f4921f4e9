-- BL.RETRIEVE / BL.ALL. ARGV[A] 'retrieve' or 'all', ARGV[A+1] lease ms ('' no lock) or the ALL limit
-- ('' none), ARGV[A+2] how many filters, then per filter: dotted path, op, value as JSON text; last, for a
-- retrieve, the waiter marker's lifetime when the retriever blocks ('0': it does not).
-- Filters mean what they mean on the embedded engine (engine/bulletin/filter.rs): equality by JSON
-- value (numbers by value), orderings only between two numbers or two strings (bytewise), a path
-- through objects by key and arrays by index.
local mode, arg, nf = ARGV[A], ARGV[A + 1], tonumber(ARGV[A + 2])
local filters = {}
for i = 0, nf - 1 do
  local path = {}
  for part in string.gmatch(ARGV[A + 3 + 3 * i] .. '.', '([^.]*)%.') do path[#path + 1] = part end
  filters[#filters + 1] = { path = path, op = ARGV[A + 4 + 3 * i], value = cjson.decode('[' .. ARGV[A + 5 + 3 * i] .. ']')[1] }
end

local function at(doc, path)
  local v = doc
  for _, part in ipairs(path) do
    if type(v) ~= 'table' then return nil end
    local nv = v[part]
    if nv == nil and string.match(part, '^%d+$') then nv = v[tonumber(part) + 1] end
    if nv == nil then return nil end
    v = nv
  end
  return v
end

local function equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= 'table' then return a == b end
  for k, v in pairs(a) do
    if b[k] == nil or not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- -1, 0, 1 between two numbers or two strings (bytewise, as Rust compares strings); nil otherwise.
local function compare(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    if a < b then return -1 elseif a > b then return 1 else return 0 end
  end
  if type(a) ~= 'string' or type(b) ~= 'string' then return nil end
  if a == b then return 0 end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  return #a < #b and -1 or 1
end

local function holds(doc, f)
  local v = at(doc, f.path)
  if f.op == '=' then return v ~= nil and equal(v, f.value) end
  if f.op == '!=' then return not (v ~= nil and equal(v, f.value)) end
  if v == nil then return false end
  local c = compare(v, f.value)
  if c == nil then return false end
  if f.op == '<' then return c < 0 elseif f.op == '<=' then return c <= 0 elseif f.op == '>' then return c > 0 else return c >= 0 end
end

local function matches(id)
  if nf == 0 then return true end
  local ok, doc = pcall(cjson.decode, redis.call('HGET', raw, id))
  if not ok then return false end
  for _, f in ipairs(filters) do
    if not holds(doc, f) then return false end
  end
  return true
end

local PAGE = 256
if mode == 'all' then
  local limit = arg == '' and -1 or tonumber(arg)
  local out = {}
  local start = 0
  while limit < 0 or #out < limit do
    local ids = redis.call('ZRANGE', order, start, start + PAGE - 1)
    for _, id in ipairs(ids) do
      if matches(id) then
        out[#out + 1] = view(load(id))
        if limit >= 0 and #out >= limit then break end
      end
    end
    if #ids < PAGE then break end
    start = start + PAGE
  end
  return out
end

-- Without filters the first free item is the answer: one element, not a page.
if nf == 0 then PAGE = 1 end
local found = nil
local start = 0
while not found do
  local ids = redis.call('ZRANGE', avail, start, start + PAGE - 1)
  for _, id in ipairs(ids) do
    if matches(id) then
      found = id
      break
    end
  end
  if #ids < PAGE then break end
  start = start + PAGE
end
if not found then
  waiting(ARGV[A + 3 + 3 * nf])
  return false
end
local it = load(found)
if arg ~= '' then
  it.token = redis.call('HINCRBY', meta, 'token', 1)
  it.lease = now + tonumber(arg)
  redis.call('ZREM', avail, found)
  redis.call('ZADD', dls, it.lease, 'L:' .. found)
  save(it)
  event('lock', it)
end
return view(it)
