-- require (spec/core.md §6), module environments and the safe globals.
--
-- Invariants: each module file is evaluated at most once per VM, in its own
-- module fiber and in a fresh global table; `loaded[path]` is 'loading'
-- until that fiber ends, which is how cycles are detected. Module ids are
-- resolved against the importer's own file (leaf/root rules) and never
-- above the import root.
local K = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local current, suspend, wake, check_suspend = K.current, K.suspend, K.wake, K.check_suspend
local INTERRUPTED = K.INTERRUPTED
local type, error, setmetatable, pairs = type, error, setmetatable, pairs
local raw_load, raw_getfenv, raw_setfenv = load, getfenv, setfenv
local REAL_G = _G

---------------------------------------------------------------------------
-- Safe globals: what every module environment starts with.
local safe_names = {
  'assert', 'error', 'ipairs', 'next', 'pairs', 'rawequal', 'rawget', 'rawset',
  'select', 'setmetatable', 'getmetatable', 'tonumber', 'tostring', 'type',
  'unpack', '_VERSION', 'collectgarbage', 'gcinfo', 'newproxy',
  'string', 'table', 'math', 'bit',
  -- runtime globals (defined by the other core files)
  'spawn', 'this_fiber', 'scope', 'scope_cleanup_push', 'scope_cleanup_pop',
  'pcall', 'xpcall', 'coroutine', 'byte_span',
}

local function text_only_load(chunk, chunkname, mode, env)
  if type(chunk) == 'string' and chunk:byte(1) == 27 then
    return nil, 'binary chunks are refused: load() takes Lua source text only'
  end
  if mode ~= nil and mode ~= 't' then
    return nil, "binary chunks are refused: load() accepts only mode 't'"
  end
  if type(chunk) == 'function' then
    -- A reader may deliver a binary signature in its first piece.
    local first = true
    local reader = chunk
    chunk = function()
      local piece = reader()
      if first and type(piece) == 'string' and piece ~= '' then
        first = false
        if piece:byte(1) == 27 then
          error('binary chunks are refused: load() takes Lua source text only', 0)
        end
      end
      return piece
    end
  end
  local fn, err
  if env == nil then
    fn, err = raw_load(chunk, chunkname, 't')
    -- Chunks without an explicit env get the caller's module globals.
    if fn then raw_setfenv(fn, raw_getfenv(2)) end
  else
    fn, err = raw_load(chunk, chunkname, 't', env)
  end
  return fn, err
end

local function user_getfenv(x)
  if x == nil then x = 1 end
  if type(x) == 'number' then
    if x == 0 then return raw_getfenv(0) end
    x = x + 1
  end
  local e = raw_getfenv(x)
  if e == REAL_G then return nil end
  return e
end

local function user_setfenv(x, t)
  if type(x) == 'number' and x > 0 then x = x + 1 end
  if x ~= 0 and raw_getfenv(x) == REAL_G then raise_errno(E.EPERM) end
  return raw_setfenv(x, t)
end

local safe_os = {
  time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
  getenv = os.getenv,
}

local function new_env(context, file)
  local env = {}
  for i = 1, #safe_names do
    local n = safe_names[i]
    env[n] = REAL_G[n]
  end
  env.string = setmetatable({}, { __index = string })
  for k, v in pairs(string) do env.string[k] = v end
  env.table, env.math, env.bit = {}, {}, {}
  for k, v in pairs(table) do env.table[k] = v end
  for k, v in pairs(math) do env.math[k] = v end
  for k, v in pairs(bit) do env.bit[k] = v end
  env.os = {}
  for k, v in pairs(safe_os) do env.os[k] = v end
  env.print = K.print
  env.require = K.require
  env.load = text_only_load
  env.loadstring = function(s, name) return text_only_load(s, name, 't') end
  env.getfenv, env.setfenv = user_getfenv, user_setfenv
  env._G = env
  env._CONTEXT = context
  env._FILE = file
  return env
end
K.new_env = new_env

---------------------------------------------------------------------------
-- Module ids and resolution
local builtin = K.builtin_modules
local core_ids = {}
for _, id in ipairs({ 'ffi', 'generic_error', 'asio_error', 'mutex',
  'recursive_mutex', 'condition_variable', 'future', 'inbox', 'json', 'time',
  'filesystem', 'pipe', 'ip', 'file', 'unix', 'stream', 'regex',
  'serial_port', 'tls', 'system' }) do core_ids[id] = true end

local NAME = '^[%a_][%w_]*$'
local loaded = {}   -- absolute path -> 'loading' | module value

local function dirname(p) return (p:match('^(.*)/[^/]*$')) or '.' end
-- Display paths (chunk names) are relative to the directory the entry
-- script was named from; '' stands for that directory itself.
local function display_dirname(p) return (p:match('^(.*)/[^/]*$')) or '' end
local function display_join(d, n)
  if d == '' then return n end
  return d .. '/' .. n
end

-- Returns the directory to look in, or raises the spec's error.
local function resolve_dir(id, importer)
  if id:sub(1, 1) == '/' then
    -- '/a/b': every component (split on each '/') must be a valid name
    local names = {}
    for part in (id:sub(2) .. '/'):gmatch('([^/]*)/') do
      if not part:match(NAME) then raise_core('invalid_module_name') end
      names[#names + 1] = part
    end
    local last = table.remove(names)
    local dir, display = importer.root, importer.display_root
    for i = 1, #names do
      dir, display = dir .. '/' .. names[i], display_join(display, names[i])
    end
    return dir, last, display
  end
  local rest, ups = id, 0
  local dot = false
  if rest:sub(1, 2) == './' then
    dot = true
    rest = rest:sub(3)
  else
    while rest:sub(1, 3) == '../' do
      ups = ups + 1
      rest = rest:sub(4)
    end
  end
  if not rest:match(NAME) then raise_core('invalid_module_name') end
  local dir, display = importer.dir, importer.display_dir
  if dot then
    if importer.leaf then raise_core('leaf_cannot_import_child') end
  else
    if importer.is_root then raise_core('root_cannot_import_parent') end
    -- A leaf's first '../' names its own directory (a sibling).
    if importer.leaf then ups = ups - 1 end
    for _ = 1, ups do
      if dir == importer.root then raise_core('root_cannot_import_parent') end
      dir, display = dirname(dir), display_dirname(display)
    end
  end
  return dir, rest, display
end

local function is_project_id(id)
  return id:sub(1, 2) == './' or id:sub(1, 3) == '../' or id:sub(1, 1) == '/'
end

-- Loads and runs module `path` in a module fiber; returns its globals.
-- Reads a whole file with ring ops (openat, read, close) from fiber `f`.
-- Returns its bytes, or nil and an errno. Interruption is held off for the
-- few ops this takes, so the fd is always closed.
local READ_CHUNK = 65536
local function read_file(f, path)
  f.int_disabled = f.int_disabled + 1
  local ok, src, errno = K.raw_pcall(function()
    local fd = K.await_op(f, rt.open(path))
    -- an fd object on success, a negative errno on failure
    if type(fd) == 'number' then return nil, -fd end
    local parts, offset, buf, err = {}, 0, byte_span.new(READ_CHUNK), nil
    while true do
      local n = K.await_op(f, rt.read_at(fd, buf, offset))
      if n < 0 then err = -n break end
      if n == 0 then break end
      parts[#parts + 1] = tostring(buf:slice(1, n))
      offset = offset + n
    end
    K.await_op(f, rt.close(fd))
    if err then return nil, err end
    return table.concat(parts)
  end)
  f.int_disabled = f.int_disabled - 1
  if not ok then error(src, 0) end
  return src, errno
end

local function import(id)
  local f = current()
  if not f.is_main then raise_core('only_main_fiber_may_import') end
  check_suspend(f)
  local importer = f.module_info
  local dir, name, display_dir = resolve_dir(id, importer)
  -- D/name.lua, else D/name/init.lua
  local candidates = {
    { dir .. '/' .. name .. '.lua', display_join(display_dir, name .. '.lua'), false },
    { dir .. '/' .. name .. '/init.lua', display_join(display_dir, name .. '/init.lua'), true },
  }
  local path, display, is_init, src
  for i = 1, 2 do
    local c = candidates[i]
    local state = loaded[c[1]]
    if state == 'loading' then raise_core('cyclic_import') end
    if state ~= nil then return state end
    local errno
    src, errno = read_file(f, c[1])
    if src then
      path, display, is_init = c[1], c[2], c[3]
      break
    end
    if errno ~= E.ENOENT and errno ~= E.ENOTDIR then K.raise_errno_system(errno) end
  end
  if not src then raise_core('module_not_found', 'module', id) end
  loaded[path] = 'loading'
  local env = new_env('', path)
  local fn, err = raw_load(src, '@' .. display, 't', env)
  if not fn then
    loaded[path] = nil
    error(err, 0)
  end
  local info = {
    root = importer.root, display_root = importer.display_root,
    dir = is_init and (dir .. '/' .. name) or dir,
    display_dir = is_init and display_join(display_dir, name) or display_dir,
    leaf = not is_init, is_root = false,
  }
  local mf = K.new_fiber(function()
    raw_setfenv(0, env)
    fn()
    return raw_getfenv(0)
  end, nil, {
    is_main = true, module = true, module_info = info, locals_owner = f.locals_owner or f,
  })
  mf.handle_alive = true
  mf.joiner = f
  local r = suspend(f, function()
    mf.joiner = nil
    wake(f, INTERRUPTED)
  end)
  if r == INTERRUPTED then
    mf.detached = true
    loaded[path] = nil
    raise_core('interrupted')
  end
  if not mf.ok then
    loaded[path] = nil
    error(mf.err, 0)
  end
  local value = mf.results[2]
  loaded[path] = value
  return value
end

function K.require(id)
  if type(id) ~= 'string' then raise_errno(E.EINVAL, 1) end
  if is_project_id(id) then return import(id) end
  local f = current()
  if not f.is_main then raise_core('only_main_fiber_may_import') end
  local m = builtin[id]
  if m then
    if type(m) == 'function' then
      m = m()
      builtin[id] = m
    end
    return m
  end
  if core_ids[id] then raise_core('module_not_found', 'module', id) end
  -- package ids: dot-separated names, each like a project module name
  if not id:match('^[%a_][%w_]*$') and not id:match('^[%a_][%w_%.]*[%w_]$') then
    raise_core('invalid_module_name')
  end
  raise_core('module_not_found', 'module', id)
end

function K.raise_errno_system(errno)
  error(K.system_error(errno), 0)
end

---------------------------------------------------------------------------
-- The entry script: the VM's main fiber.
function K.start_main(path, display, context)
  local src, errno = rt.read_file(path)
  if not src then return false, 'cannot read ' .. display .. ': ' .. rt.strerror(errno) end
  if src:byte(1) == 27 then
    return false, display .. ': binary chunks are refused: scripts must be Lua source text'
  end
  local env = new_env(context, path)
  -- `arg` as the standalone Lua interpreter sets it: arg[0] is the script,
  -- arg[1..] its arguments, arg[-1] the interpreter.
  local a = K.arguments
  local arg = { [-1] = a[1], [0] = a[2] }
  for i = 3, #a do arg[i - 2] = a[i] end
  env.arg = arg
  local fn, err = raw_load(src, '@' .. display, 't', env)
  if not fn then return false, err end
  local dir, display_dir = dirname(path), display_dirname(display)
  local info = {
    root = dir, display_root = display_dir, dir = dir, display_dir = display_dir,
    leaf = false, is_root = true,
  }
  local mf = K.new_fiber(function(...)
    raw_setfenv(0, env)
    return fn(...)
  end, nil, { is_main = true, vm_main = true, module_info = info })
  K.vm_id = K.hexid(mf)
  return true
end

function K.main_finished(f)
  K.main_done = true
end
