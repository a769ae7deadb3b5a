-- filesystem (spec/io.md "filesystem"), asynchronous: every call that
-- touches the file system suspends the calling fiber (an interruption
-- point) instead of blocking the VM's thread as Emilua does. Ring ops
-- where the kernel has them, blocking-pool jobs elsewhere
-- (src/modules/filesystem.rs gives the primitives P).
--
-- Invariants:
-- - A path object is immutable: its string lives in IO.paths (weak keys),
--   out of user code's reach; every operation returns a new path.
-- - Paths use the generic format only ('/' separators; no root names on
--   Linux). Functions take a path object or a string (IO.path_arg).
-- - Errors are the kernel's (system category) except argument errors
--   (EINVAL, generic, naming the argument).
local K, P, IO = ...
local E = K.rt.errno
local raise_errno = K.raise_errno
local run_free, path_arg = IO.run_free, IO.path_arg
local type, error, setmetatable = type, error, setmetatable
local sfind, ssub, sbyte = string.find, string.sub, string.byte
local tconcat = table.concat

local fs = {}
local paths = IO.paths

---------------------------------------------------------------------------
-- filesystem.path
local path_methods, path_props = {}, {}
-- The metatable _FILE already has (lua/core/modules.lua): filled here.
local path_mt = K.class('filesystem.path', path_methods, path_props, K.path_mt)

local function mkpath(s)
  local p = setmetatable({}, path_mt)
  paths[p] = s
  return p
end

local function str(p, arg)
  local s = paths[p]
  if s then return s end
  if type(p) == 'string' then return p end
  raise_errno(E.EINVAL, arg or 1)
end

local function self_str(p)
  local s = paths[p]
  if not s then raise_errno(E.EINVAL, 1) end
  return s
end

-- Elements as std::filesystem iterates them: "/" for the root directory,
-- then each name, then "" when the path ends with a separator.
local function elements(s)
  local out = {}
  local pos = 1
  if sbyte(s, 1) == 47 then
    out[1] = '/'
    pos = 2
    while sbyte(s, pos) == 47 do pos = pos + 1 end
  end
  while pos <= #s do
    local i = sfind(s, '/', pos, true)
    if not i then out[#out + 1] = ssub(s, pos) break end
    out[#out + 1] = ssub(s, pos, i - 1)
    pos = i + 1
    while sbyte(s, pos) == 47 do pos = pos + 1 end
    if pos > #s then out[#out + 1] = '' end
  end
  return out
end

local function filename_of(s)
  if s == '' or sbyte(s, #s) == 47 then return '' end
  local i = #s
  while i > 0 and sbyte(s, i) ~= 47 do i = i - 1 end
  return ssub(s, i + 1)
end

local function parent_of(s)
  local els = elements(s)
  if #els <= 1 then
    return (els[1] == '/') and '/' or ''
  end
  -- Drop the last element (a name, or the trailing "").
  local n = #els - 1
  if els[1] == '/' then
    return '/' .. tconcat(els, '/', 2, n)
  end
  return tconcat(els, '/', 1, n)
end

local function stem_ext(name)
  if name == '.' or name == '..' then return name, '' end
  local i = #name
  while i > 1 and sbyte(name, i) ~= 46 do i = i - 1 end
  if i <= 1 then return name, '' end
  return ssub(name, 1, i - 1), ssub(name, i)
end

local function join(a, b)
  if sbyte(b, 1) == 47 then return b end
  if a == '' then return b end
  if sbyte(a, #a) == 47 then return a .. b end
  return a .. '/' .. b
end

local function normal(s)
  if s == '' then return '' end
  local els = elements(s)
  local absolute = els[1] == '/'
  local out = {}
  for i = absolute and 2 or 1, #els do
    local e = els[i]
    if e == '.' or e == '' then
      -- dropped (a trailing "." or "" keeps a trailing separator below)
    elseif e == '..' then
      if #out > 0 and out[#out] ~= '..' then out[#out] = nil
      elseif not absolute then out[#out + 1] = '..' end
    else
      out[#out + 1] = e
    end
  end
  local last = els[#els]
  local r = tconcat(out, '/')
  if absolute then r = '/' .. r end
  if (last == '.' or last == '') and #out > 0 and out[#out] ~= '..' then r = r .. '/' end
  if r == '' then r = '.' end
  return r
end

local function relative(s, base)
  local a, b = elements(s), elements(base)
  if (a[1] == '/') ~= (b[1] == '/') then return '' end
  local i = 1
  while i <= #a and i <= #b and a[i] == b[i] do i = i + 1 end
  if i > #a and i > #b then return '.' end
  local n = 0
  for j = i, #b do
    local e = b[j]
    if e == '..' then n = n - 1 elseif e ~= '.' and e ~= '' then n = n + 1 end
  end
  if n < 0 then return '' end
  if n == 0 and i > #a then return '.' end
  local parts = {}
  for _ = 1, n do parts[#parts + 1] = '..' end
  for j = i, #a do
    if a[j] ~= '' or j < #a then parts[#parts + 1] = a[j] end
  end
  return tconcat(parts, '/')
end

path_props.root_name = function() return mkpath('') end
path_props.root_directory = function(p)
  return mkpath(sbyte(self_str(p), 1) == 47 and '/' or '')
end
path_props.root_path = path_props.root_directory
path_props.relative_path = function(p)
  local s = self_str(p)
  local i = 1
  while sbyte(s, i) == 47 do i = i + 1 end
  return mkpath(ssub(s, i))
end
path_props.parent_path = function(p) return mkpath(parent_of(self_str(p))) end
path_props.filename = function(p) return mkpath(filename_of(self_str(p))) end
path_props.stem = function(p) return mkpath((stem_ext(filename_of(self_str(p))))) end
path_props.extension = function(p)
  local _, ext = stem_ext(filename_of(self_str(p)))
  return mkpath(ext)
end
path_props.empty = function(p) return self_str(p) == '' end
path_props.is_absolute = function(p) return sbyte(self_str(p), 1) == 47 end
path_props.is_relative = function(p) return sbyte(self_str(p), 1) ~= 47 end
for _, part in ipairs{ 'root_name', 'root_directory', 'root_path', 'relative_path',
                       'parent_path', 'filename', 'stem', 'extension' } do
  local get = path_props[part]
  path_props['has_' .. part] = function(p) return paths[get(p)] ~= '' end
end

function path_methods.to_generic(p) return self_str(p) end
function path_methods.make_preferred(p) return mkpath(self_str(p)) end
function path_methods.remove_filename(p)
  local s = self_str(p)
  return mkpath(ssub(s, 1, #s - #filename_of(s)))
end
function path_methods.replace_filename(p, name)
  local s = self_str(p)
  return mkpath(join(ssub(s, 1, #s - #filename_of(s)), str(name, 2)))
end
function path_methods.replace_extension(p, ext)
  local s = self_str(p)
  local name = filename_of(s)
  local stem, old = stem_ext(name)
  local base = ssub(s, 1, #s - #old)
  if ext == nil then return mkpath(base) end
  ext = str(ext, 2)
  if ext ~= '' and sbyte(ext, 1) ~= 46 then ext = '.' .. ext end
  return mkpath(base .. ext)
end
function path_methods.lexically_normal(p) return mkpath(normal(self_str(p))) end
function path_methods.lexically_relative(p, base)
  return mkpath(relative(self_str(p), str(base, 2)))
end
function path_methods.lexically_proximate(p, base)
  local r = relative(self_str(p), str(base, 2))
  return mkpath(r ~= '' and r or self_str(p))
end
-- for element in p:iterate() do ... end: each element as a path.
function path_methods.iterate(p)
  local els = elements(self_str(p))
  local i = 0
  return function()
    i = i + 1
    if els[i] ~= nil then return mkpath(els[i]) end
  end
end

path_mt.__tostring = function(p) return self_str(p) end
path_mt.__div = function(a, b) return mkpath(join(str(a, 1), str(b, 2))) end
path_mt.__concat = function(a, b) return mkpath(str(a, 1) .. str(b, 2)) end
path_mt.__eq = function(a, b)
  local x, y = elements(paths[a]), elements(paths[b])
  if #x ~= #y then return false end
  for i = 1, #x do if x[i] ~= y[i] then return false end end
  return true
end
path_mt.__lt = function(a, b) return paths[a] < paths[b] end
path_mt.__le = function(a, b) return paths[a] <= paths[b] end

local function path_new(s)
  if s == nil then return mkpath('') end
  s = str(s, 1)
  if sfind(s, '\0', 1, true) then raise_errno(E.EINVAL, 1) end
  return mkpath(s)
end
fs.path = {
  new = path_new,
  from_generic = path_new,
  from_system = path_new,
}

---------------------------------------------------------------------------
-- Status
local lister -- (directory listings, defined with the iterators below)
local STATX_SIZE = P.statx_size

-- The statx table of `p`, or nil, errno (ENOENT, ENOTDIR: "not found").
local function stat(p, nofollow)
  local buf = byte_span.new(STATX_SIZE)
  local f = K.current()
  K.check_suspend(f)
  local id = P.statx(p, nofollow, buf)
  local ok, res = K.raw_pcall(K.await_op, f, id)
  if not ok then error(res, 0) end
  if res < 0 then return nil, -res end
  return P.stat_fields(buf)
end

local status_mt = K.class('filesystem.file_status', {}, {
  type = function(s) return s[1] end,
  mode = function(s) return s[2] end,
})
local function make_status(t, mode)
  local s = setmetatable({ t, mode }, status_mt)
  return s
end

local function status_of(p, nofollow)
  local s = path_arg(p, 1)
  local t, errno = stat(s, nofollow)
  if t then return make_status(t.type, t.mode), t end
  if errno == E.ENOENT or errno == E.ENOTDIR then return make_status('not_found', 0xFFFF) end
  error(K.system_error(errno), 0)
end

-- status(p) / symlink_status(p) -> file_status {type, mode} [S]
function fs.status(p) return (status_of(p, false)) end
function fs.symlink_status(p) return (status_of(p, true)) end

-- Like status, but raising for a missing file (ENOENT).
local function stat_or_raise(p, nofollow, arg)
  local t, errno = stat(path_arg(p, arg or 1), nofollow)
  if not t then error(K.system_error(errno), 0) end
  return t
end

function fs.exists(p) return status_of(p, false).type ~= 'not_found' end
local predicates = {
  is_block_file = 'block', is_character_file = 'character', is_directory = 'directory',
  is_fifo = 'fifo', is_regular_file = 'regular', is_socket = 'socket',
}
for name, kind in pairs(predicates) do
  fs[name] = function(p) return status_of(p, false).type == kind end
end
function fs.is_symlink(p) return status_of(p, true).type == 'symlink' end
function fs.is_other(p)
  local t = status_of(p, false).type
  return t ~= 'not_found' and t ~= 'regular' and t ~= 'directory' and t ~= 'symlink'
end
function fs.file_size(p)
  local t = stat_or_raise(p, false)
  if t.type == 'directory' then error(K.system_error(E.EISDIR), 0) end
  if t.type ~= 'regular' then error(K.system_error(E.EINVAL), 0) end
  return t.size
end
function fs.hard_link_count(p) return stat_or_raise(p, false).nlink end
-- filesystem.clock lives in the time chunk (its time points share the
-- clocks' code); that chunk loads on first use.
local function time_chunk()
  local t = K.builtin_modules.time
  if type(t) == 'function' then t('time') end
end
time_chunk()
fs.clock = K.file_clock
local file_tp, is_file_tp = K.file_tp, K.is_file_tp

-- last_write_time(p) -> filesystem.clock.time_point; last_write_time(p, t)
-- sets it from a filesystem.clock.time_point or (luring) a number of
-- seconds since the epoch.
function fs.last_write_time(p, t)
  if t == nil then
    local st = stat_or_raise(p, false)
    return file_tp(st.mtime_sec * 1e9 + st.mtime_nsec)
  end
  local sec, nsec
  if is_file_tp(t) then
    local ns = rawget(t, 'ns')
    sec = math.floor(ns / 1e9)
    nsec = math.max(0, math.min(ns - sec * 1e9, 999999999))
  else
    if type(t) ~= 'number' or t ~= t or t == math.huge or t == -math.huge then
      raise_errno(E.EINVAL, 2)
    end
    sec = math.floor(t)
    nsec = math.min(math.floor((t - sec) * 1e9), 999999999)
  end
  run_free(P.set_mtime, path_arg(p, 1), sec, nsec)
end
-- Linux file capabilities (the security.capability attribute) are read and
-- written as a system.linux_capabilities object in Emilua; luring has no
-- such object yet, so both say so instead of being missing.
function fs.cap_get_file(p)
  path_arg(p, 1)
  raise_errno(E.ENOTSUP)
end
function fs.cap_set_file(p)
  path_arg(p, 1)
  raise_errno(E.ENOTSUP)
end
function fs.is_empty(p)
  local t = stat_or_raise(p, false)
  if t.type == 'directory' then
    local next_entry = lister(path_arg(p, 1))
    local empty = next_entry() == nil
    next_entry(true)
    return empty
  end
  return t.size == 0
end
function fs.equivalent(a, b)
  local x = stat_or_raise(a, false, 1)
  local y = stat_or_raise(b, false, 2)
  return x.dev_major == y.dev_major and x.dev_minor == y.dev_minor and x.ino == y.ino
end

---------------------------------------------------------------------------
-- Paths resolved against the file system
function fs.current_working_directory(p)
  if p == nil then return mkpath(P.getcwd()) end
  -- Process-wide state: only the master VM may change it (EPERM).
  P.chdir(path_arg(p, 1))
end
function fs.temp_directory_path() return mkpath(P.temp_dir()) end
function fs.absolute(p)
  local s = path_arg(p, 1)
  if sbyte(s, 1) == 47 then return mkpath(s) end
  return mkpath(join(P.getcwd(), s))
end
function fs.canonical(p) return mkpath(run_free(P.canonical, path_arg(p, 1))) end
function fs.weakly_canonical(p)
  return mkpath(normal(run_free(P.weakly_canonical, path_arg(p, 1))))
end
function fs.relative(p, base)
  base = base == nil and P.getcwd() or path_arg(base, 2)
  local a = normal(run_free(P.weakly_canonical, path_arg(p, 1)))
  local b = normal(run_free(P.weakly_canonical, base))
  return mkpath(relative(a, b))
end
function fs.proximate(p, base)
  local r = fs.relative(p, base)
  if paths[r] == '' then return mkpath(path_arg(p, 1)) end
  return r
end
function fs.read_symlink(p) return mkpath(run_free(P.read_symlink, path_arg(p, 1))) end
-- space(p) -> {capacity, free, available} in bytes
function fs.space(p) return run_free(P.space, path_arg(p, 1)) end

---------------------------------------------------------------------------
-- Changes
local function mode_arg(mode, arg, default)
  if mode == nil then return default end
  if type(mode) ~= 'number' or mode < 0 or mode > 4095 or mode % 1 ~= 0 then
    raise_errno(E.EINVAL, arg)
  end
  return mode
end

-- create_directory(p[, mode]) -> true if created, false if a directory
-- was there already (anything else there: EEXIST).
function fs.create_directory(p, mode)
  local s = path_arg(p, 1)
  mode = mode_arg(mode, 2, 511)
  local f = K.current()
  K.check_suspend(f)
  local ok, res = K.raw_pcall(K.await_op, f, P.mkdir(s, mode))
  if not ok then error(res, 0) end
  if res == -E.EEXIST then
    local t = stat(s, false)
    if t and t.type == 'directory' then return false end
  end
  if res < 0 then IO.raise_result(res) end
  return true
end
function fs.create_directories(p)
  local s = normal(path_arg(p, 1))
  local els = elements(s)
  local cur, created = '', false
  for i = 1, #els do
    local e = els[i]
    if e ~= '' then
      cur = (cur == '' and e) or join(cur, e)
      if e ~= '/' and e ~= '..' and e ~= '.' then
        local ok, res = pcall(fs.create_directory, cur)
        if not ok then
          -- An element that exists but is no directory: ENOTDIR, as
          -- std::filesystem says, unless it is the last one.
          if type(res) == 'table' and res == K.system_error(E.EEXIST) and i < #els then
            error(K.system_error(E.ENOTDIR), 0)
          end
          error(res, 0)
        end
        created = res or created
      end
    end
  end
  return created
end
function fs.create_hard_link(target, link)
  run_free(P.link, path_arg(target, 1), path_arg(link, 2))
end
function fs.create_symlink(target, link)
  run_free(P.symlink, path_arg(target, 1), path_arg(link, 2))
end
fs.create_directory_symlink = fs.create_symlink
function fs.rename(from, to) run_free(P.rename, path_arg(from, 1), path_arg(to, 2)) end
-- remove(p) -> true if something was removed, false if nothing was there.
function fs.remove(p)
  local s = path_arg(p, 1)
  local f = K.current()
  K.check_suspend(f)
  local ok, res = K.raw_pcall(K.await_op, f, P.unlink(s, false))
  if not ok then error(res, 0) end
  if res == -E.EISDIR then
    ok, res = K.raw_pcall(K.await_op, f, P.unlink(s, true))
    if not ok then error(res, 0) end
  end
  if res == -E.ENOENT then return false end
  if res < 0 then IO.raise_result(res) end
  return true
end
-- remove_all(p) -> number of entries removed
function fs.remove_all(p) return run_free(P.remove_all, path_arg(p, 1)) end
function fs.resize_file(p, n)
  if type(n) ~= 'number' or n < 0 or n % 1 ~= 0 then raise_errno(E.EINVAL, 2) end
  run_free(P.truncate, path_arg(p, 1), n)
end
-- chmod(p, mode) / lchmod(p, mode): permission bits (see filesystem.mode)
function fs.chmod(p, mode) run_free(P.chmod, path_arg(p, 1), mode_arg(mode, 2), false) end
function fs.lchmod(p, mode) run_free(P.chmod, path_arg(p, 1), mode_arg(mode, 2), true) end
function fs.mkfifo(p, mode) run_free(P.mkfifo, path_arg(p, 1), mode_arg(mode, 2)) end
-- chown(p, uid, gid) / lchown: -1 leaves that id unchanged
function fs.chown(p, uid, gid) run_free(P.chown, path_arg(p, 1), uid, gid, false) end
function fs.lchown(p, uid, gid) run_free(P.chown, path_arg(p, 1), uid, gid, true) end
-- mknod(p, mode, dev): mode is a file type (filesystem.file_type_bits) or'd
-- with permission bits; dev from makedev(major, minor) for devices.
function fs.mknod(p, mode, dev) run_free(P.mknod, path_arg(p, 1), mode, dev or 0) end
fs.makedev = P.makedev
fs.file_type_bits = { character = P.S_IFCHR, block = P.S_IFBLK, fifo = P.S_IFIFO,
                      regular = P.S_IFREG, socket = P.S_IFSOCK }
-- umask(mask) -> the previous mask (process-wide)
function fs.umask(mask) return P.umask(mode_arg(mask, 1)) end
-- mode(user, group, other) -> permission bits from three digits 0..7
function fs.mode(u, g, o)
  for i, v in ipairs{ u, g, o } do
    if type(v) ~= 'number' or v < 0 or v > 7 or v % 1 ~= 0 then raise_errno(E.EINVAL, i) end
  end
  return u * 64 + g * 8 + o
end

-- copy_file(from, to[, options]) -> true if copied. options: a table
-- {skip_existing=, overwrite_existing=, update_existing=} (one at most),
-- or one of those names as a string.
local function existing_choice(opts, arg)
  if opts == nil then return 0 end
  if type(opts) == 'string' then opts = { [opts] = true } end
  if type(opts) ~= 'table' then raise_errno(E.EINVAL, arg) end
  local n, choice = 0, 0
  if opts.skip_existing then n, choice = n + 1, 1 end
  if opts.overwrite_existing then n, choice = n + 1, 2 end
  if opts.update_existing then n, choice = n + 1, 3 end
  if n > 1 then raise_errno(E.EINVAL, arg) end
  return choice, opts
end
function fs.copy_file(from, to, opts)
  local choice = existing_choice(opts, 3)
  return run_free(P.copy_file, path_arg(from, 1), path_arg(to, 2), choice)
end
function fs.copy_symlink(from, to)
  fs.create_symlink(run_free(P.read_symlink, path_arg(from, 1)), to)
end
-- copy(from, to[, options]): files, symlinks (copy_symlinks /
-- skip_symlinks; else followed), directories (their files; everything
-- beneath with recursive), like std::filesystem::copy. One blocking-pool
-- job that opens everything beneath the top relative to its parent's
-- descriptor (src/modules/filesystem.rs `copy_tree`).
function fs.copy(from, to, opts)
  local choice, o = existing_choice(opts, 3)
  o = o or {}
  run_free(P.copy_tree, path_arg(from, 1), path_arg(to, 2), choice,
           o.recursive == true, o.copy_symlinks == true, o.skip_symlinks == true)
end

---------------------------------------------------------------------------
-- Directory iteration: each listing is one blocking-pool job.
local entry_mt = K.class('filesystem.directory_entry', {}, {
  path = function(e) return e[1] end,
  type = function(e) return e[2] end,
  depth = function(e) return e[3] end,
})

-- An iterator over the entries of directory `s` (full path), listed in
-- batches (one blocking-pool job each) as the loop goes; `next(true)`
-- closes it. `walk` (a recursive walk) keeps the directory's descriptor
-- for its subdirectories; with `walk.parent` (the parent's handle) the
-- directory is opened as `walk.name` relative to it, without following
-- a symlink unless `walk.follow`. Returns the iterator and the handle.
function lister(s, walk)
  local handle
  if walk and walk.parent then
    handle = run_free(P.open_subdir, walk.parent, walk.name, walk.follow)
  else
    handle = run_free(P.open_dir, s, walk ~= nil)
  end
  local batch, i, listing = {}, 0, true
  return function(stop)
    if stop then
      if handle then P.close_dir(handle) handle = nil end
      listing = false
      return nil
    end
    i = i + 1
    if batch[i] == nil then
      if not listing then return nil end
      batch, i = run_free(P.read_dir, handle), 1
      if batch[1] == nil then listing = false return nil end
    end
    return batch[i]
  end, handle
end

-- for entry in directory_iterator(p) do ... entry.path, entry.type end
function fs.directory_iterator(p)
  local s = path_arg(p, 1)
  local next_entry = lister(s)
  return function()
    local e = next_entry()
    if e then return setmetatable({ mkpath(join(s, e.name)), e.type, 0 }, entry_mt) end
  end
end

-- Depth first; opts: {follow_directory_symlink=, skip_permission_denied=}.
-- A directory is opened when the walk enters it, by its name relative to
-- its parent's descriptor: a directory replaced by a symlink after it was
-- listed is refused (ENOTDIR) unless the walk follows directory symlinks.
-- for entry in recursive_directory_iterator(p[, opts]) do ... end
-- The second result controls the walk from inside the loop:
-- it:disable_recursion_pending() keeps the loop out of the directory just
-- returned, it:pop() leaves the directory being listed (its parent's next
-- entry comes next), it.depth and it.recursion_pending describe the last
-- entry. A directory is opened when the loop moves on from its entry, so
-- both calls take effect before any of its entries is read.
local walk_of = setmetatable({}, { __mode = 'k' })
local walker_methods = {}
local walker_mt = K.class('filesystem.recursive_directory_iterator', walker_methods, {
  depth = function(it) return walk_of[it].depth end,
  recursion_pending = function(it) return walk_of[it].pending ~= nil end,
})
local function walk(it)
  local w = walk_of[it]
  if not w then raise_errno(E.EINVAL, 1) end
  return w
end
function walker_methods.disable_recursion_pending(it)
  walk(it).pending = nil
end
function walker_methods.pop(it)
  local w = walk(it)
  w.pending = nil
  local top = w.stack[#w.stack]
  if top then
    top.next(true)
    w.stack[#w.stack] = nil
  end
end

function fs.recursive_directory_iterator(p, opts)
  local s = path_arg(p, 1)
  if opts ~= nil and type(opts) ~= 'table' then raise_errno(E.EINVAL, 2) end
  opts = opts or {}
  local root, root_handle = lister(s, {})
  local w = { stack = { { dir = s, next = root, handle = root_handle, depth = 0 } },
              pending = nil, depth = 0 }
  local it = setmetatable({}, walker_mt)
  walk_of[it] = w
  local stack = w.stack
  return function()
    local pending = w.pending
    if pending then
      w.pending = nil
      local ok, next_entry, handle = pcall(lister, pending.dir, pending)
      if ok then
        stack[#stack + 1] = { dir = pending.dir, next = next_entry, handle = handle,
                              depth = pending.depth }
      elseif not (opts.skip_permission_denied and type(next_entry) == 'table'
                  and next_entry.code == E.EACCES) then
        error(next_entry, 0)
      end
    end
    while #stack > 0 do
      local top = stack[#stack]
      local e = top.next()
      if not e then
        top.next(true)
        stack[#stack] = nil
      else
        local full = join(top.dir, e.name)
        local descend = e.type == 'directory'
        local follow = false
        if e.type == 'symlink' and opts.follow_directory_symlink then
          local t = stat(full, false)
          descend = t ~= nil and t.type == 'directory'
          follow = true
        end
        if descend then
          w.pending = { dir = full, depth = top.depth + 1, parent = top.handle,
                        name = e.name, follow = follow }
        end
        w.depth = top.depth
        return setmetatable({ mkpath(full), e.type, top.depth }, entry_mt)
      end
    end
  end, it
end

return fs
