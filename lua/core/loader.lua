-- Module loading beyond the entry module, and spawning: `require` of a
-- project module, the master VM's entry script, and `spawn_vm` (its
-- options, the entry module of the new VM). Most actors do none of it, so
-- this chunk is loaded by the first of them in a VM (lua/core/modules.lua
-- `cold`), not at boot: a VM that never imports or spawns neither loads
-- nor keeps its code. It runs with the runtime's globals as its env.
--
-- Invariants: those of lua/core/modules.lua and lua/core/actors.lua,
-- whose code this is. Its state (`loaded`, `identity_of`,
-- `module_of_env`) is theirs, shared through modules.lua's `shared`.
local K, raw_load, raw_getfenv, loaded, identity_of, module_of_env, new_env,
  is_project_id, dirname, display_dirname, display_join, NAME = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local current, suspend, wake, check_suspend = K.current, K.suspend, K.wake, K.check_suspend
local INTERRUPTED = K.INTERRUPTED
local type, error, pairs, ipairs, next, tostring = type, error, pairs, ipairs, next, tostring
local s_byte, s_sub, s_match, s_gmatch = string.byte, string.sub, string.match, string.gmatch
local t_concat, t_remove = table.concat, table.remove
local span_new = byte_span.new

---------------------------------------------------------------------------
-- Errors of the module files themselves (luring extension, category
-- 'luring.module'); each carries `module = <id>`.
local MAX_CODE_BYTES = rt.max_code_bytes
local module_messages = {
  "The module's path leads outside the import root (through an absolute symlink or one that climbs out with '..')",
  "A module must be a regular file, not a FIFO, socket or device (see the error's file_type)",
  "The module is larger than the " .. (MAX_CODE_BYTES / 1048576) .. " MiB limit",
}
local module_category = K.category('luring.module', function(code)
  return module_messages[code] or ''
end)
local function raise_module(code, id, field, value)
  local e = K.new_error(module_category, code)
  e.module = id
  if field then e[field] = value end
  error(e, 0)
end
local ESCAPES_ROOT, NOT_REGULAR_FILE, TOO_LARGE = 1, 2, 3

-- A candidate file that could not be read: raises why, unless it is merely
-- absent (then the caller tries the next candidate).
local function raise_unreadable(id, status, detail)
  if status == 'special' then
    raise_module(NOT_REGULAR_FILE, id, 'file_type', detail)
  elseif status == 'too_large' then
    raise_module(TOO_LARGE, id)
  elseif detail == E.EXDEV then
    raise_module(ESCAPES_ROOT, id)
  elseif detail ~= E.ENOENT and detail ~= E.ENOTDIR then
    K.raise_errno_system(detail)
  end
end

-- Returns the directory to look in, or raises the spec's error.
local function resolve_dir(id, importer)
  if s_sub(id, 1, 1) == '/' then
    -- '/a/b': every component (split on each '/') must be a valid name
    local names = {}
    for part in s_gmatch(s_sub(id, 2) .. '/', '([^/]*)/') do
      if not s_match(part, NAME) then raise_core('invalid_module_name') end
      names[#names + 1] = part
    end
    local last = t_remove(names)
    local dir, display = importer.root, importer.display_root
    for i = 1, #names do
      dir, display = dir .. '/' .. names[i], display_join(display, names[i])
    end
    return dir, last, display
  end
  local rest, ups = id, 0
  local dot = false
  if s_sub(rest, 1, 2) == './' then
    dot = true
    rest = s_sub(rest, 3)
  else
    while s_sub(rest, 1, 3) == '../' do
      ups = ups + 1
      rest = s_sub(rest, 4)
    end
  end
  if not s_match(rest, NAME) then raise_core('invalid_module_name') end
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

-- Opens `rel` (a path below the import root) with ring ops from fiber `f`
-- and reads it if it is a new regular file within the size bound.
-- Returns one of
--   'ok', source, identity      a new module's text
--   'known', identity           a file already loaded (or loading)
--   'errno', errno              the OS refused (ENOENT, EXDEV, ...)
--   'special', file_type        not a regular file
--   'too_large'
-- Interruption is held off for the few ops this takes, so the fd is
-- always closed.
local READ_CHUNK = 65536
local STATX_SIZE = rt.statx_size
local function read_module(f, rel)
  f.int_disabled = f.int_disabled + 1
  local ok, status, a, b = K.raw_pcall(function()
    local fd = K.await_op(f, rt.open_module(rel))
    -- an fd object on success, a negative errno on failure;
    -- ENXIO: a socket, or a device without a driver; never a regular file
    if fd == -E.ENXIO then return 'special', 'special file' end
    if type(fd) == 'number' then return 'errno', -fd end
    local status, a, b
    local st = span_new(STATX_SIZE)
    local res = K.await_op(f, rt.statx(fd, st))
    if res < 0 then
      status, a = 'errno', -res
    else
      local kind, size, identity = rt.stat_info(st)
      if loaded[identity] ~= nil then
        status, a = 'known', identity
      elseif kind == 'directory' then
        status, a = 'errno', E.EISDIR
      elseif kind ~= 'file' then
        status, a = 'special', kind
      elseif size > MAX_CODE_BYTES then
        status = 'too_large'
      else
        -- The size is a hint: the bound holds even if the file grows.
        local parts, offset, buf = {}, 0, span_new(READ_CHUNK)
        while true do
          local n = K.await_op(f, rt.read_at(fd, buf, offset))
          if n < 0 then status, a = 'errno', -n break end
          if n == 0 then status, a, b = 'ok', t_concat(parts), identity break end
          offset = offset + n
          if offset > MAX_CODE_BYTES then status = 'too_large' break end
          parts[#parts + 1] = tostring(buf:slice(1, n))
        end
      end
    end
    K.await_op(f, rt.close(fd))
    return status, a, b
  end)
  f.int_disabled = f.int_disabled - 1
  if not ok then error(status, 0) end
  return status, a, b
end

-- The module at identity `key`, or the cyclic_import error.
local function loaded_module(key)
  local state = loaded[key]
  if state == 'loading' then raise_core('cyclic_import') end
  return state
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
  local root_len = #importer.root
  local path, display, is_init, src, identity
  for i = 1, 2 do
    local c = candidates[i]
    local rel = s_sub(c[1], root_len + 2)
    -- a path that resolved before, to a module that is loaded or loading
    -- (a failed one was forgotten and is read again)
    local known = identity_of[rel]
    if known and loaded[known] ~= nil then return loaded_module(known) end
    local status, a, b = read_module(f, rel)
    if status == 'ok' then
      path, display, is_init, src, identity = c[1], c[2], c[3], a, b
      break
    elseif status == 'known' then
      identity_of[rel] = a
      return loaded_module(a)
    else
      raise_unreadable(id, status, a)
    end
  end
  if not src then raise_core('module_not_found', 'module', id) end
  loaded[identity] = 'loading'
  local env = new_env('', path)
  local fn, err
  if s_byte(src, 1) == 27 then
    -- (LuaJIT's own refusal does not say which file)
    err = display .. ': binary chunks are refused: modules must be Lua source text'
  else
    fn, err = raw_load(src, '@' .. display, 't', env)
  end
  if not fn then
    loaded[identity] = nil
    error(err, 0)
  end
  identity_of[s_sub(path, root_len + 2)] = identity
  local info = {
    root = importer.root, display_root = importer.display_root,
    dir = is_init and (dir .. '/' .. name) or dir,
    display_dir = is_init and display_join(display_dir, name) or display_dir,
    leaf = not is_init, is_root = false,
  }
  module_of_env[env] = { info = info, path = path, display = display }
  local mf = K.new_fiber(function()
    fn()
    return raw_getfenv(0)
  end, nil, {
    is_main = true, module = true, module_info = info, locals_owner = f.locals_owner or f,
    env = env,
  })
  mf.handle_alive = true
  mf.joiner = f
  local r = suspend(f, function()
    mf.joiner = nil
    wake(f, INTERRUPTED)
  end)
  if r == INTERRUPTED then
    mf.detached = true
    loaded[identity] = nil
    raise_core('interrupted')
  end
  if not mf.ok then
    loaded[identity] = nil
    error(mf.err, 0)
  end
  local value = mf[K.RESULTS][2]
  loaded[identity] = value
  return value
end

---------------------------------------------------------------------------
-- The entry script: the VM's main fiber. It is the root module: it stays
-- 'loading' for ever, so importing it from anywhere is a cycle.
local function start_main(path, display, context)
  local src, identity = rt.read_entry(path)
  if not src then return false, 'cannot read ' .. display .. ': ' .. identity end
  if s_byte(src, 1) == 27 then
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
  loaded[identity] = 'loading'
  identity_of[s_sub(path, #dir + 2)] = identity
  local info = {
    root = dir, display_root = display_dir, dir = dir, display_dir = display_dir,
    leaf = false, is_root = true,
  }
  module_of_env[env] = { info = info, path = path, display = display }
  local mf = K.new_fiber(fn, nil, {
    is_main = true, vm_main = true, module_info = info, env = env,
  })
  K.vm_id = K.hexid(mf)
  return true
end

---------------------------------------------------------------------------
-- Workers (spawn_vm, lua/core/actors.lua). The entry module is resolved
-- like `require` from the calling module `env`, read beneath the import
-- root and started in a new VM by rt.spawn_vm.
local function ends_with_init(p) return s_match(p, '/init%.lua$') ~= nil end

local function spawn_module(id, env, new_thread, new_master, monitor)
  local rec = module_of_env[env]
  if not rec then raise_core('current_module_not_known') end
  local info = rec.info
  local root_len = #info.root
  local candidates
  if id == '.' then
    candidates = { { rec.path, rec.display, ends_with_init(rec.path) } }
  elseif is_project_id(id) then
    local dir, name, display_dir = resolve_dir(id, info)
    candidates = {
      { dir .. '/' .. name .. '.lua', display_join(display_dir, name .. '.lua'), false },
      { dir .. '/' .. name .. '/init.lua', display_join(display_dir, name .. '/init.lua'), true },
    }
  else
    raise_core('invalid_module_name')
  end
  for i = 1, #candidates do
    local c = candidates[i]
    local h, status, detail = rt.spawn_vm(s_sub(c[1], root_len + 2), c[1], c[2], c[3],
      info.root, info.display_root, new_thread, new_master, monitor)
    if h then return h end
    if h == false then error(status, 0) end
    raise_unreadable(id, status, detail)
  end
  raise_core('module_not_found', 'module', id)
end

-- spawn_vm{ module = id, sandbox = {} }: resolved as for an in-process
-- spawn, read here and sent to a new sandbox (which has no file access).
-- `options`: the checked `sandbox = {...}` options; `subprocess`: the
-- checked plan of Emilua's form (environment, stdio). Exactly one is set.
local function spawn_sandboxed_module(id, env, monitor, options, subprocess)
  local rec = module_of_env[env]
  if not rec then raise_core('current_module_not_known') end
  local info = rec.info
  local root_len = #info.root
  local candidates
  if id == '.' then
    candidates = { { rec.path, rec.display } }
  elseif is_project_id(id) then
    local dir, name, display_dir = resolve_dir(id, info)
    candidates = {
      { dir .. '/' .. name .. '.lua', display_join(display_dir, name .. '.lua') },
      { dir .. '/' .. name .. '/init.lua', display_join(display_dir, name .. '/init.lua') },
    }
  else
    raise_core('invalid_module_name')
  end
  K.sandbox_methods_ready()
  for i = 1, #candidates do
    local c = candidates[i]
    local h, status, detail = rt.spawn_sandboxed(s_sub(c[1], root_len + 2), c[2], monitor,
      options, subprocess)
    if h then
      K.relay_started()
      return h
    end
    raise_unreadable(id, status, detail)
  end
  raise_core('module_not_found', 'module', id)
end

---------------------------------------------------------------------------
-- spawn_vm(module | options)
local function bool_option(opts, name)
  local v = opts[name]
  if v ~= nil and type(v) ~= 'boolean' then raise_errno(E.EINVAL, name) end
  return v
end

-- spawn_vm{ sandbox = {...} } options (docs/guide/sandboxes.md): checked
-- here into a plain table for rt.spawn_sandboxed. An unknown key or a bad
-- value is EINVAL naming it ('sandbox/memory'): nothing is granted, or
-- weakened, silently.
local MAX_INT = 2^53 - 1
local function count_in(v, lo, hi)
  return type(v) == 'number' and v % 1 == 0 and v >= lo and v <= hi
end

local function plain_table(v)
  return type(v) == 'table' and K.debug.getmetatable(v) == nil
end

-- A list of 1..n (no other key) whose members pass `check`, or nil.
local function list_of(v, check, max)
  if not plain_table(v) then return nil end
  local n = #v
  if n > max then return nil end
  for k in pairs(v) do
    if not count_in(k, 1, n) then return nil end
  end
  for i = 1, n do
    if not check(v[i]) then return nil end
  end
  return v
end

local function absolute_path(p)
  return type(p) == 'string' and p:sub(1, 1) == '/' and not p:find('\0', 1, true)
    and #p < 4096
end

local function port(p) return count_in(p, 0, 65535) end

local MAX_PATHS, MAX_PORTS = 64, 64
local sandbox_checks = {
  read_only = function(v) return list_of(v, absolute_path, MAX_PATHS) end,
  read_write = function(v) return list_of(v, absolute_path, MAX_PATHS) end,
  network = function(v)
    if v == 'none' then return false end
    if v == 'loopback' then return { tcp_bind = {}, tcp_connect = {} } end
    if not plain_table(v) then return nil end
    local out = {}
    for k, ports in pairs(v) do
      if k ~= 'tcp_bind' and k ~= 'tcp_connect' then return nil end
      out[k] = list_of(ports, port, MAX_PORTS)
      if not out[k] then return nil end
    end
    out.tcp_bind = out.tcp_bind or {}
    out.tcp_connect = out.tcp_connect or {}
    return out
  end,
  limits = function(v)
    if not plain_table(v) then return nil end
    for k, n in pairs(v) do
      if k == 'open_files' then
        if not count_in(n, 16, 65536) then return nil end
      elseif k == 'processes' then
        if not count_in(n, 4, 4096) then return nil end
      else
        return nil
      end
    end
    return { open_files = v.open_files, processes = v.processes }
  end,
  memory = function(v) return count_in(v, 2^20, MAX_INT) and v or nil end,
  cpu_seconds = function(v) return count_in(v, 1, 2^31) and v or nil end,
  -- 'share' (this process's stdin) or a file_descriptor (checked by the
  -- runtime); absent: /dev/null.
  stdin = function(v)
    if v == 'share' or type(v) == 'userdata' then return v end
    return nil
  end,
  allow_weaker = function(v)
    local names = { landlock = true }
    return list_of(v, function(n) return names[n] == true end, 8)
  end,
}

local function sandbox_options(sandbox)
  local out = {}
  for key, value in pairs(sandbox) do
    local check = type(key) == 'string' and sandbox_checks[key]
    if not check then
      raise_errno(E.EINVAL, 'sandbox/' .. (type(key) == 'string' and key or '?'))
    end
    local v = check(value)
    if v == nil then raise_errno(E.EINVAL, 'sandbox/' .. key) end
    out[key] = v
  end
  if out.network == false then out.network = nil end
  if out.allow_weaker then
    local weaker = {}
    for _, name in ipairs(out.allow_weaker) do weaker[name] = true end
    out.allow_weaker = weaker
  end
  return out
end

-- Emilua's `subprocess = {...}` checked and copied (spec/actors.md §5). It
-- runs in the same sandbox as `sandbox = {}`, which always makes every
-- namespace: the newns_* flags are checked, never needed. Unknown keys are
-- refused, naming them (nothing is ignored).
local newns_flags = { newns_uts = true, newns_ipc = true, newns_pid = true,
  newns_user = true, newns_net = true, newns_mount = true }
local function subprocess_plan(opts)
  if type(opts) ~= 'table' or K.debug.getmetatable(opts) ~= nil then
    raise_errno(E.EINVAL, 'subprocess')
  end
  local plan = { environment = {} }
  for key, v in next, opts do
    local name = 'subprocess/' .. (type(key) == 'string' and key or '?')
    if newns_flags[key] then
      if type(v) ~= 'boolean' then raise_errno(E.EINVAL, name) end
    elseif key == 'environment' then
      if type(v) ~= 'table' or K.debug.getmetatable(v) ~= nil then raise_errno(E.EINVAL, name) end
      for k, x in next, v do
        if type(k) ~= 'string' or type(x) ~= 'string' or k == '' or k:find('=', 1, true)
          or k:find('\0', 1, true) or x:find('\0', 1, true) then
          raise_errno(E.EINVAL, name)
        end
        plan.environment[k] = x
      end
    elseif key == 'stdin' or key == 'stdout' or key == 'stderr' then
      -- 'share', a file_descriptor (checked by the runtime) or nil
      if type(v) == 'string' and v ~= 'share' then raise_errno(E.EINVAL, name) end
      if type(v) ~= 'string' and type(v) ~= 'userdata' then raise_errno(E.EINVAL, name) end
      plan[key] = v
    elseif key == 'init' then
      -- Init scripts (root-run setup in the child) are not provided: the
      -- sandbox's set-up is luring's own.
      raise_errno(E.ENOTSUP, name)
    else
      raise_errno(E.EINVAL, name)
    end
  end
  return plan
end

-- The body of the `spawn_vm` global (lua/core/actors.lua), which passes
-- the calling module's globals as `env`.
local function spawn_vm(arg, env)
  local module, new_thread, new_master, monitor = nil, false, false, false
  if type(arg) == 'string' then
    module = arg
  elseif type(arg) == 'table' then
    if K.debug.getmetatable(arg) ~= nil then raise_errno(E.EINVAL, 1) end
    module = arg.module
    if module == nil then module = '' end
    if type(module) ~= 'string' then raise_errno(E.EINVAL, 'module') end
    local subprocess = arg.subprocess
    local inherit = bool_option(arg, 'inherit_context')
    local master = bool_option(arg, 'new_master')
    if subprocess ~= nil then
      if inherit ~= nil or master ~= nil or arg.sandbox ~= nil then raise_errno(E.EINVAL, 1) end
      local plan = subprocess_plan(subprocess)
      if module == '' then raise_core('invalid_module_name') end
      if K.sandboxed then raise_errno(E.ENOTSUP) end
      return spawn_sandboxed_module(module, env, bool_option(arg, 'monitor') == true,
        nil, plan)
    end
    local sandbox = arg.sandbox
    if sandbox ~= nil then
      if type(sandbox) ~= 'table' or K.debug.getmetatable(sandbox) ~= nil then
        raise_errno(E.EINVAL, 'sandbox')
      end
      local options = sandbox_options(sandbox)
      if inherit ~= nil or master ~= nil then raise_errno(E.EINVAL, 1) end
      if module == '' then raise_core('invalid_module_name') end
      if K.sandboxed then raise_errno(E.ENOTSUP) end
      return spawn_sandboxed_module(module, env, bool_option(arg, 'monitor') == true,
        options)
    end
    new_thread = inherit == false
    new_master = master == true
    monitor = bool_option(arg, 'monitor') == true
    local hint = arg.concurrency_hint
    if hint ~= nil and hint ~= 'safe' and (type(hint) ~= 'number' or hint % 1 ~= 0) then
      raise_errno(E.EINVAL, 'concurrency_hint')
    end
  else
    raise_errno(E.EINVAL, 1)
  end
  if module == '' then raise_core('invalid_module_name') end
  -- A sandboxed actor's ring is the only one it may have (seccomp denies
  -- io_uring_setup): it cannot host more VMs.
  if K.sandboxed then raise_errno(E.ENOTSUP) end
  return spawn_module(module, env, new_thread, new_master, monitor)
end

return {
  import = import,
  start_main = start_main,
  spawn_module = spawn_module,
  spawn_sandboxed_module = spawn_sandboxed_module,
  spawn_vm = spawn_vm,
}
