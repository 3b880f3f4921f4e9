-- Runs once when a script VM is built, before any user code: builds the `redis` table around the
-- native functions it is given, removes what Redis 7.0 does not offer, makes every library table
-- read-only and installs the globals protection. Returns the protected globals (what scripts see),
-- the raw globals (where KEYS and ARGV are set per call; its `__redis__err__handler` is the error
-- handler scripts run under) and the runner that calls a library's load under that handler.
local native, is_function_vm = ...
local dbg = debug
local error, type, tostring, pairs, select = error, type, tostring, pairs, select
local raw_setmetatable, raw_rawset, raw_getmetatable, xpcall = setmetatable, rawset, getmetatable, xpcall
local G = _G

-- Where an error is reported: the innermost frame of user code (native and prelude frames skipped),
-- as Redis's __redis__err__handler reports the function that raised it.
local prelude_source = dbg.getinfo(1, 'S').source
local function error_handler(err)
  local level, i = 2, nil
  repeat
    i = dbg.getinfo(level, 'nSl')
    level = level + 1
  until not i or (i.what ~= 'C' and i.source ~= prelude_source)
  if type(err) == 'userdata' then
    -- Raised by a native library function: its message, placed as Lua places a C function's error.
    err = native.error_message(err)
    if i then err = i.short_src .. ':' .. tostring(i.currentline) .. ': ' .. err end
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

local function single_field(field)
  return function(...)
    if select('#', ...) ~= 1 or type((...)) ~= 'string' then
      return native.error_table('wrong number or type of arguments')
    end
    local msg = ...
    if field == 'err' then
      if msg:sub(1, 1) ~= '-' then msg = '-' .. msg end
      return native.error_table(msg)
    end
    return {[field] = msg}
  end
end

-- `native.raising.*` are C functions that raise the error table their native answers, as Redis's
-- own C functions do; `native.call` raises a command's error table, `native.pcall` returns it.
local raising = native.raising
local redis = {}
redis.call = native.call
redis.pcall = native.pcall
redis.error_reply = single_field('err')
redis.status_reply = single_field('ok')
redis.sha1hex = raising.sha1hex
redis.log = raising.log
redis.setresp = raising.setresp
redis.set_repl = raising.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = raising.acl_check_cmd
redis.REPL_ALL, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_NONE = 3, 1, 2, 2, 0
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION = native.version
redis.REDIS_VERSION_NUM = native.version_num
if is_function_vm then
  redis.register_function = raising.register_function
end
G.redis = redis
G.__redis__err__handler = error_handler

-- Redis's `pcall`: an error table with an `err` string comes back as that string, so
-- `pcall(redis.call, 'nope')` answers false and "ERR Unknown Redis command called from script".
local raw_pcall = pcall
local function pcall_result(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'table' then
    local msg = e.err
    if type(msg) == 'string' or type(msg) == 'number' then return false, msg end
  end
  return false, e
end
G.pcall = function(...)
  -- Redis's C wrapper, given nothing, calls its own placeholder `true`.
  if select('#', ...) == 0 then return false, 'attempt to call a boolean value' end
  return pcall_result(raw_pcall(...))
end

-- What Redis 7.0 leaves out of the globals.
for _, name in pairs({'dofile', 'loadfile', 'print', 'getfenv', 'setfenv', 'newproxy', 'module', 'require',
                      'debug', 'io', 'os', 'package'}) do
  G[name] = nil
end

-- Read-only tables: Redis's Lua refuses writes at the VM level; here every protected table is an
-- empty proxy whose reads go to the real table and whose writes raise the same error. A proxy's own
-- metatable must stay out of reach (whoever holds it could clear `__newindex` and write through):
-- its `__metatable` field is `hidden`, which makes Lua's own setmetatable refuse it and which the
-- scripts' getmetatable (below) turns into nil, as Redis answers for its read-only tables.
local readonly = raw_setmetatable({}, {__mode = 'k'})
local hidden = {}
local function deny()
  error('Attempt to modify a readonly table', 2)
end
local function protect(t, view)
  local proxy = raw_setmetatable({}, {__index = t, __newindex = deny, __metatable = view or hidden})
  readonly[proxy] = true
  return proxy
end
G.getmetatable = function(v)
  local mt = raw_getmetatable(v)
  if mt == hidden then return nil end
  return mt
end
G.rawset = function(t, k, v)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return raw_rawset(t, k, v)
end
G.setmetatable = function(t, mt)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return raw_setmetatable(t, mt)
end
-- table.insert writes with rawseti, past a proxy's `__newindex`: without this check
-- `table.insert(string, KEYS)` would leave state in a library table for the next script (and break
-- the reuse of KEYS and ARGV between calls, `vm.rs`). (remove and sort write nothing to a proxy,
-- whose array part is always empty, and setn is obsolete in 5.1.)
local raw_insert = G.table.insert
G.table.insert = function(t, ...)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return raw_insert(t, ...)
end

for _, name in pairs({'string', 'math', 'table', 'coroutine', 'cjson', 'cmsgpack', 'bit', 'struct', 'redis'}) do
  if G[name] then G[name] = protect(G[name]) end
end
-- Strings share one metatable, which scripts reach with getmetatable(''): they get a read-only view
-- of it (Redis's is read-only too), so no script can leave state or hooks there for the next one.
local string_mt = raw_getmetatable('')
string_mt.__index = G.string
string_mt.__metatable = protect(string_mt)

local function nonexistent(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
raw_setmetatable(G, {__index = nonexistent})
-- What getmetatable(_G) shows: a read-only view of that metatable, as Redis's.
local globals_view = protect(raw_getmetatable(G))

-- The functions VM (FUNCTION LOAD): while a library loads, its code sees only `redis` with
-- register_function, log and the version; when its functions run they see the full globals.
local globals, set_loading
if is_function_vm then
  local load_redis = {register_function = redis.register_function, log = redis.log,
                      REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
                      LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3}
  raw_setmetatable(load_redis, {__index = nonexistent})
  local load_api = raw_setmetatable({redis = protect(load_redis)}, {__index = nonexistent})
  local mt = {__index = G, __newindex = deny, __metatable = globals_view}
  globals = raw_setmetatable({}, mt)
  readonly[globals] = true
  set_loading = function(on)
    if on then mt.__index = load_api else mt.__index = G end
  end
else
  globals = protect(G, globals_view)
end
G._G = globals

-- Calls `f` under the error handler (a library's load): true and the first result, or false and the
-- error table. Scripts and functions are called from Rust (`vm.rs`, `entry`) with the same handler.
local function run(f)
  return xpcall(f, error_handler)
end

return globals, G, run, set_loading
