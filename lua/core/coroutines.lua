-- The fiber-aware coroutine library and string.gsub wrapper (moved out of
-- lua/core/scheduler.lua): a lazy core chunk, loaded by the first call of
-- one of their stubs in a VM (most actors never call them, and every VM
-- would otherwise keep their code). It may be loaded at any moment, also
-- by a finalizer while the VM closes: `K.load_lazy_chunk` is a plain C
-- function that builds nothing through mlua.
--
-- Invariants:
-- * The scheduler's C-depth count (`c_depth`) and count of coroutines
--   resumed where the fiber cannot suspend (`c_resumes`) stay the
--   scheduler's locals; this chunk changes them through the functions
--   the scheduler passes it (set_depth, enter_c, enter_resume,
--   leave_counted_resume).
-- * Only coroutines created here (`user_co`) can be resumed or yielded
--   from by user code; a fiber's own coroutine is the scheduler's.
-- * A user coroutine that suspends the whole fiber is "busy" (cannot be
--   resumed) until the fiber is woken and the yield is forwarded back.
local K, co_create, co_resume, co_yield, co_status, co_running, co_isyieldable,
  raw_pcall, raw_gsub, SUSPEND, YIELDED, NOP_WAIT, TERMINATE, NOT_ENOUGH_MEMORY,
  emergency_gc, thread_scopes, run_handlers, current,
  set_depth, enter_c, enter_resume, leave_counted_resume = ...
local E = K.rt.errno
local raise_core, raise_errno, normalize_error = K.raise_core, K.raise_errno, K.normalize_error
local type, error, setmetatable, tonumber = type, error, setmetatable, tonumber

-- Coroutines created by user code (coroutine.create/wrap); every other
-- thread is a fiber's or the scheduler's. (Marking the user's rather than
-- the fibers' keeps no table sized by the peak number of fibers.)
local user_co = setmetatable({}, { __mode = 'k' })
local busy = setmetatable({}, { __mode = 'k' })

-- `depth` is the C depth of the caller of resume: the resume counted one
-- more while the coroutine ran.
local function resume_tail(co, depth, ok, ...)
  set_depth(depth)
  if not ok and (...) == NOT_ENOUGH_MEMORY then emergency_gc() end
  if ok then
    local sig = ...
    if sig == SUSPEND or sig == YIELDED or sig == NOP_WAIT or sig == TERMINATE then
      -- The coroutine suspended the whole fiber: forward the yield up and
      -- resume the coroutine transparently once the fiber is woken.
      busy[co] = true
      local a, b = co_yield(sig)
      busy[co] = nil
      set_depth(depth + 1)
      return resume_tail(co, depth, co_resume(co, a, b))
    end
    return true, ...
  end
  return false, normalize_error((...))
end

local coroutine_patched = {}

-- A user coroutine's root scope runs when its body ends, on success or error.
local function scope_tail_co(s, ok, ...)
  run_handlers(s, 0)
  if not ok then error(normalize_error((...)), 0) end
  return ...
end

local function co_create_patched(fn)
  if type(fn) ~= 'function' then
    error("bad argument #1 to 'create' (function expected)", 2)
  end
  local co
  co = co_create(function(...)
    local s = thread_scopes()
    return scope_tail_co(s, raw_pcall(fn, ...))
  end)
  user_co[co] = true
  return co
end
coroutine_patched.create = co_create_patched

-- A coroutine resumed where the fiber cannot suspend cannot suspend it
-- either (see c_resumes); it still yields to its resumer as usual.
local function c_resume_tail(depth, ok, ...)
  leave_counted_resume(depth)
  if not ok and (...) == NOT_ENOUGH_MEMORY then emergency_gc() end
  if ok then return true, ... end
  return false, normalize_error((...))
end

local function co_resume_patched(co, ...)
  local f = current()
  if f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  if type(co) ~= 'thread' then
    error("bad argument #1 to 'resume' (coroutine expected)", 2)
  end
  if busy[co] then raise_errno(E.EPERM) end
  if not user_co[co] then raise_core('bad_coroutine') end
  local depth, counted = enter_resume()
  if not depth then return false, 'C stack overflow' end
  if counted then return c_resume_tail(depth, co_resume(co, ...)) end
  return resume_tail(co, depth, co_resume(co, ...))
end
coroutine_patched.resume = co_resume_patched

function coroutine_patched.yield(...)
  local th = co_running()
  if not user_co[th] then raise_core('bad_coroutine') end
  return co_yield(...)
end

function coroutine_patched.status(co)
  if busy[co] then return 'normal' end
  return co_status(co)
end

function coroutine_patched.running()
  local th = co_running()
  if not user_co[th] then return nil end
  return th
end

function coroutine_patched.wrap(fn)
  local co = co_create_patched(fn)
  local resume = co_resume_patched
  return function(...)
    return (function(ok, ...)
      if ok then return ... end
      error((...), 0)
    end)(resume(co, ...))
  end
end

-- True where coroutine.yield works: inside a user coroutine, outside a C
-- callback. (A fiber's own coroutine is the scheduler's, not yieldable.)
function coroutine_patched.isyieldable()
  local th = co_running()
  return user_co[th] == true and co_isyieldable()
end

-- string.gsub calls a function or table replacement from C, so recursion
-- through it is counted like a resume (also for s:gsub, which reaches the
-- same table through the string metatable).
local gsub_counted
do
  local getinfo, format = K.debug.getinfo, string.format
  -- Arguments are checked here, in LuaJIT's words and at the caller's line
  -- (the wrapper must know the replacement's type before gsub runs).
  local function arg_error(narg, msg)
    local info = getinfo(2, 'n')
    local name = info and info.name or '?'
    if info and info.namewhat == 'method' then
      narg = narg - 1
      if narg == 0 then error(format("calling '%s' on bad self (%s)", name, msg), 3) end
    end
    error(format("bad argument #%d to '%s' (%s)", narg, name, msg), 3)
  end
  local function tail(depth, ...)
    set_depth(depth)
    return ...
  end
  local function enter()
    return enter_c() or error('C stack overflow', 0)
  end
  -- The replacement is what recurses: it runs counted, and gsub itself is
  -- tail-called so that its own errors (malformed patterns) point at the
  -- caller's line as without the wrapper.
  function gsub_counted(s, pattern, repl, n)
    local ts, tp, tr = type(s), type(pattern), type(repl)
    if ts ~= 'string' and ts ~= 'number' then arg_error(1, 'string expected, got ' .. ts) end
    if tp ~= 'string' and tp ~= 'number' then arg_error(2, 'string expected, got ' .. tp) end
    if n ~= nil and type(n) ~= 'number' then
      n = tonumber(n) or arg_error(4, 'number expected, got ' .. type(n))
    end
    if tr == 'function' then
      local fn = repl
      repl = function(...) return tail(enter(), fn(...)) end
    elseif tr == 'table' then
      local t = repl
      repl = setmetatable({}, { __index = function(_, k) return tail(enter(), t[k]) end })
    elseif tr ~= 'string' and tr ~= 'number' then
      arg_error(3, 'string/function/table expected')
    end
    return raw_gsub(s, pattern, repl, n)
  end
end

coroutine_patched.gsub = gsub_counted
return coroutine_patched
