-- require (spec/core.md §6), module environments and the safe globals.
-- Reading and starting project modules, the entry script and spawned
-- VMs' entry modules is lua/core/loader.lua, loaded on first use (`cold`);
-- these invariants hold for that code too.
--
-- Invariants:
-- * Each module file is evaluated at most once per VM, in its own module
--   fiber and in a fresh global table. A file is known by its identity
--   (device:inode from statx), so two paths to one file are one module;
--   `loaded[identity]` is 'loading' until that fiber ends (the entry script
--   stays 'loading' for ever), which is how cycles are detected.
-- * Module files are opened by the kernel beneath the import root
--   (openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS on the root's O_PATH
--   fd, src/actor/module_files.rs); only regular files of at most
--   rt.max_code_bytes are read, with O_NONBLOCK, so nothing can hang the
--   actor. Ids are also checked as text (leaf/root rules, name syntax).
-- * User code never reaches the runtime's own tables: REAL_G, the library
--   tables it holds and every function env of the runtime stay private.
--   Each module gets its own copies of the library tables and of every
--   builtin module it requires; the string metatable is locked and indexes
--   a private copy of the string library; getfenv answers nil for runtime
--   functions and setfenv refuses them; every fiber and coroutine thread
--   carries the globals of the thread that started it (a module fiber: the
--   module's); the main thread, where the scheduler runs, has an empty,
--   sealed environment in case user code ever ran there. This file calls
--   library functions only through locals captured before any user code
--   ran.
local K = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local current, check_suspend = K.current, K.check_suspend
local type, error, setmetatable, pairs, ipairs, next, rawget, tostring =
  type, error, setmetatable, pairs, ipairs, next, rawget, tostring
local raw_load, raw_getfenv, raw_setfenv = load, getfenv, setfenv
local raw_getmetatable = K.debug.getmetatable
local s_sub, s_match = string.sub, string.match
local t_concat = table.concat
local REAL_G = _G
local NO_GLOBALS = K.NO_GLOBALS

-- The rest runs inside `define` (called at the end), so the functions
-- below copy the locals above from its closure instead of looking each
-- up in LuaJIT's list of open upvalues (lua/core/scheduler.lua, where
-- `define` is explained).
local function define()

---------------------------------------------------------------------------
-- Safe globals: what every module environment starts with. Values are
-- snapshotted now, so nothing done to REAL_G later can change them.
-- (one constructor: the table is made at its size, without the list and
-- the rehashes a loop over names cost every boot)
local safe_values = {
  assert = REAL_G.assert, error = REAL_G.error, ipairs = REAL_G.ipairs,
  next = REAL_G.next, pairs = REAL_G.pairs, rawequal = REAL_G.rawequal,
  rawget = REAL_G.rawget, rawset = REAL_G.rawset, select = REAL_G.select,
  setmetatable = REAL_G.setmetatable, getmetatable = REAL_G.getmetatable,
  tonumber = REAL_G.tonumber, tostring = REAL_G.tostring, type = REAL_G.type,
  unpack = REAL_G.unpack, _VERSION = REAL_G._VERSION,
  collectgarbage = REAL_G.collectgarbage, gcinfo = REAL_G.gcinfo,
  -- runtime globals (defined by the other core files)
  spawn = REAL_G.spawn, scope = REAL_G.scope,
  scope_cleanup_push = REAL_G.scope_cleanup_push,
  scope_cleanup_pop = REAL_G.scope_cleanup_pop, pcall = REAL_G.pcall,
  xpcall = REAL_G.xpcall, format = REAL_G.format, spawn_vm = REAL_G.spawn_vm,
  spawn_context_threads = REAL_G.spawn_context_threads,
}

local function shallow_copy(t, except)
  local c = {}
  for k, v in pairs(t) do
    if k ~= except then c[k] = v end
  end
  return c
end
-- Its loop gets hot (it copies every library for each module): a trace
-- compiled there gave every VM a machine-code area (mprotect calls, ~8 kB
-- of RSS, an unwinder registration) for code that runs once per module.
K.jit_off(shallow_copy)

-- Library tables: each module gets its own shallow copy of the runtime's
-- (changing `string.format` in one module changes nothing elsewhere).
-- They are copied from the runtime's own tables, which user code never
-- reaches and nothing changes after boot (lua/core/scheduler.lua wrapped
-- string.gsub and coroutine before this file runs); a snapshot of each
-- cost every VM ~4 kB. `string.dump` is left out (boot removes it from
-- the runtime's table too): bytecode never loads, and dumping runtime
-- functions serves no one.
local library_tables = {
  string = string, table = table, math = math, bit = bit, coroutine = coroutine,
  byte_span = byte_span,
  os = {
    time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
    getenv = os.getenv,
  },
}
local library_except = { string = 'dump' }

-- String methods ('x':upper()) index the runtime's string table (private:
-- user code never reaches it) through a locked metatable: no module can
-- change what another module's (or the runtime's) string methods do.
do
  local string_mt = raw_getmetatable('')
  string_mt.__index = string
  string_mt.__metatable = 'string'
end

-- What user code gets as load, loadstring, getfenv, setfenv and newproxy
-- is lua/core/user_env.lua, loaded by a VM's first call of one of them:
-- most actors never call them. These stubs tail-call the real function,
-- so error levels and getfenv levels see the caller as before. Loaded
-- through `K.load_lazy_chunk` (a plain C function): a user finalizer may
-- be the first caller while the VM closes. A load that failed (out of
-- memory) is tried again at the next call.
-- (`lazy`: one stub maker for these and for lua/core/loader.lua's entries,
-- see `cold`; each stub is a closure of one shared function.)
local function lazy(load, name)
  return function(...) return load()[name](...) end
end
local user_env_functions
local raw_newproxy = newproxy
local function user_env()
  local fns = user_env_functions
  if not fns then
    fns = K.load_lazy_chunk(REAL_G, 'user_env')(K, raw_load, raw_getfenv, raw_setfenv,
      raw_newproxy, REAL_G, NO_GLOBALS)
    user_env_functions = fns
  end
  return fns
end
local text_only_load, text_only_loadstring = lazy(user_env, 'load'), lazy(user_env, 'loadstring')
local user_getfenv, user_setfenv = lazy(user_env, 'getfenv'), lazy(user_env, 'setfenv')
local safe_newproxy = lazy(user_env, 'newproxy')

-- print writes through the VM's stdout buffer, which goes to the executor's
-- ordered output queue (ring writes, never a blocking write) before any
-- stderr output, before any ring write to fd 1/2 and before the thread
-- sleeps.
local stdout_write, select = rt.stdout_write, select
function K.print(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  stdout_write(t_concat(parts, '\t', 1, n) .. '\n')
end

local function new_env(context, file)
  local env = {}
  for k, v in pairs(safe_values) do env[k] = v end
  for name, lib in pairs(library_tables) do env[name] = shallow_copy(lib, library_except[name]) end
  env.this_fiber = setmetatable({}, K.this_fiber_mt)
  env.print = K.print
  env.newproxy = safe_newproxy
  env.require = K.require
  env.load = text_only_load
  env.loadstring = text_only_loadstring
  env.getfenv, env.setfenv = user_getfenv, user_setfenv
  env._G = env
  env._CONTEXT = context
  -- (false: a worker's, until its start sets it; see K.prepare_worker)
  env._FILE = file and K.file_path(file) or false
  return env
end

---------------------------------------------------------------------------
-- Builtin modules: each importing module gets its own deep copy (cached per
-- module), so no module can change what `require 'time'` gives another one.
-- Metatables are shared, and every one of them is locked (`__metatable`).
local builtin = K.builtin_modules
local builtin_value = {}   -- id -> canonical value (never handed out)

-- Builtin modules whose core chunk (lua/core/<chunk>.lua) a VM loads when
-- one of them is first required: most actors never use them, and every
-- VM would otherwise load and keep their code. The chunk runs like the
-- boot chunks (the runtime's globals as its env, K as its argument) and
-- replaces these loaders with the modules it defines.
local lazy_chunks = {
  mutex = 'sync', recursive_mutex = 'sync', condition_variable = 'sync', future = 'sync',
  time = 'time', system = 'system',
}
-- One loader for all of them (modules.lua calls a builtin's loader with
-- its id). A chunk that failed to load (out of memory) is tried again.
local chunk_loaded = {}
local function lazy_loader(id)
  local chunk = lazy_chunks[id]
  if not chunk_loaded[chunk] then
    rt.core_chunk(chunk, REAL_G)(K)
    chunk_loaded[chunk] = true
  end
  local m = builtin[id]
  if m == lazy_loader then error('luring: core chunk ' .. chunk .. ' did not define ' .. id, 0) end
  if type(m) == 'function' then m = m(id) end
  return m
end
for id in pairs(lazy_chunks) do builtin[id] = lazy_loader end

-- Loads builtin module `id` once (its canonical value): the runtime's Rust
-- side needs the ip module's address class to deliver a received
-- ip.address to a VM that has not required 'ip'.
rt.set_builtin_loader(function(id)
  if builtin_value[id] == nil then
    local m = builtin[id]
    if type(m) == 'function' then m = m(id) end
    builtin_value[id] = m
  end
end)

local function deep_copy(v, seen)
  if type(v) ~= 'table' then return v end
  local c = seen[v]
  if c then return c end
  c = {}
  seen[v] = c
  for k, x in next, v do c[deep_copy(k, seen)] = deep_copy(x, seen) end
  local mt = raw_getmetatable(v)
  if mt then
    if rawget(mt, '__metatable') == nil then
      error('luring: builtin module value with an unlocked metatable', 0)
    end
    setmetatable(c, mt)
  end
  return c
end

-- Rust modules of an embedding application (src/embed/module.rs): an
-- asynchronous function comes from Rust as one that queues a job and
-- returns its op id; the fiber waits for the op like for any other.
local function host_async(submit)
  return function(...)
    local f = current()
    check_suspend(f)
    local r = K.await_op(f, submit(...))
    if type(r) ~= 'table' then raise_errno(-r) end
    if r[1] then return r[2] end
    error(r[2], 0)
  end
end

local function builtin_for(info, id)
  local m = builtin_value[id]
  if m == nil then
    m = builtin[id]
    if m == nil then m = rt.host_module(id, host_async) end
    if m == nil then return nil end
    if type(m) == 'function' then m = m(id) end
    builtin_value[id] = m
  end
  local mine = info.builtins
  if not mine then
    mine = {}
    info.builtins = mine
  end
  local c = mine[id]
  if c == nil then
    c = deep_copy(m, {})
    mine[id] = c
  end
  return c
end

-- _FILE is a filesystem.path (spec/core.md §6). The path class is
-- lua/filesystem.lua, loaded on first use only: until then a path object
-- has the shared metatable K.path_mt, whose metamethods load the module
-- (which fills K.path_mt with the real ones) and apply the real one.
K.path_strings = setmetatable({}, { __mode = 'k' })
local path_mt = { __metatable = 'filesystem.path' }
K.path_mt = path_mt
local function load_filesystem()
  if builtin_value.filesystem == nil then builtin_value.filesystem = builtin.filesystem('filesystem') end
end
for _, event in ipairs{ '__index', '__newindex', '__div', '__concat', '__eq', '__lt', '__le' } do
  local stub
  stub = function(a, b, c)
    load_filesystem()
    local real = path_mt[event]
    if real == stub then error('luring: filesystem.path class missing', 0) end
    return real(a, b, c)
  end
  path_mt[event] = stub
end
path_mt.__tostring = function(p) return K.path_strings[p] end
function K.file_path(s)
  local p = setmetatable({}, path_mt)
  K.path_strings[p] = s
  return p
end

---------------------------------------------------------------------------
-- Module ids and resolution
-- Emilua's core module ids, which a host module may not take
-- (src/embed/module.rs BUILTIN_MODULES; a unit test there checks that it
-- names exactly these): core ids: ffi, generic_error, asio_error, mutex,
-- recursive_mutex, condition_variable, future, inbox, json, time,
-- filesystem, pipe, ip, file, unix, stream, regex, serial_port, tls,
-- system. Those luring lacks fail like any package id (module_not_found);
-- no table of them is kept (every VM would hold it).

local NAME = '^[%a_][%w_]*$'
local loaded = {}       -- identity -> 'loading' | module value
local identity_of = {}  -- path below the root that resolved -> identity

local function dirname(p) return (s_match(p, '^(.*)/[^/]*$')) or '.' end
-- Display paths (chunk names) are relative to the directory the entry
-- script was named from; '' stands for that directory itself.
local function display_dirname(p) return (s_match(p, '^(.*)/[^/]*$')) or '' end
local function display_join(d, n)
  if d == '' then return n end
  return d .. '/' .. n
end

-- Module env -> { info, path, display }: what spawn_vm resolves against.
local module_of_env = setmetatable({}, { __mode = 'k' })

local function is_project_id(id)
  local c = s_sub(id, 1, 1)
  return c == '/' or s_sub(id, 1, 2) == './' or s_sub(id, 1, 3) == '../'
end

function K.raise_errno_system(errno)
  error(K.system_error(errno), 0)
end

-- Project modules, the entry script and spawning: lua/core/loader.lua,
-- loaded by the first of them in this VM (most actors never import or
-- spawn). `shared` passes it what of this file's
-- state that code shares, as arguments: a table of named fields would keep
-- each name as one more string in every VM (docs/performance.md "rss-str").
local function shared(chunk)
  return chunk(K, raw_load, raw_getfenv, loaded, identity_of, module_of_env, new_env,
    is_project_id, dirname, display_dirname, display_join, NAME)
end
local cold_functions
local function cold()
  local c = cold_functions
  if not c then
    c = shared(rt.core_chunk('loader', REAL_G))
    cold_functions = c
  end
  return c
end
local import = lazy(cold, 'import')
K.start_main, K.spawn_vm = lazy(cold, 'start_main'), lazy(cold, 'spawn_vm')
K.spawn_module, K.spawn_sandboxed_module = lazy(cold, 'spawn_module'), lazy(cold, 'spawn_sandboxed_module')

function K.require(id)
  if type(id) ~= 'string' then raise_errno(E.EINVAL, 1) end
  if is_project_id(id) then return import(id) end
  local f = current()
  if not f.is_main then raise_core('only_main_fiber_may_import') end
  local m = builtin_for(f.module_info, id)
  if m ~= nil then return m end
  -- package ids: dot-separated names, each like a project module name
  if not s_match(id, '^[%a_][%w_]*$') and not s_match(id, '^[%a_][%w_%.]*[%w_]$') then
    raise_core('invalid_module_name')
  end
  raise_core('module_not_found', 'module', id)
end

function K.main_finished(f)
  K.main_done = true
  K.actors_main_finished()
end

-- A worker VM's start, up to its module: its env and its main fiber's
-- record (queued with no job yet: nothing steps a VM before its start),
-- its id. src/actor/vm.rs (`finish_call`) makes `info` beforehand, then
-- compiles the module with `env`, makes it the main fiber's job and does
-- the rest with what this returns, in this order; no Lua code runs then.
-- Eager, not a lazy chunk: loading one per start left its code as
-- garbage, and the start's collection is gone (docs/performance.md
-- "startgc", "spawnstart"). Kept short: every VM holds it.
function K.prepare_worker(info)
  K.arguments = {}
  local env = new_env('worker', nil)
  local mf = K.new_fiber(false, nil, {
    is_main = true, vm_main = true, module_info = info, env = env,
  })
  K.vm_id = K.hexid(mf)
  return env, mf, K.W1, module_of_env, loaded, identity_of, K.file_path
end

-- Called once every core chunk has run: from now on the main thread (where
-- the scheduler runs, and with it any user metamethod it triggers) has an
-- empty, sealed environment instead of the runtime's globals.
function K.seal_main_thread()
  raw_setfenv(0, NO_GLOBALS)
end
end -- define (its body is not indented, to keep the history readable)
define()
