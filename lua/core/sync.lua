-- mutex, recursive_mutex, condition_variable, future (spec/core.md §4).
--
-- Invariants: VM-local objects; waiters are fiber records in FIFO wait
-- queues (K.q_*, O(1) per operation). Mutexes and futures register their
-- queue's owner, so only objects that have waiters NOW are tracked for the
-- teardown deadlock report (K.waited). An object is recognised by its
-- metatable's identity, never by the forgeable getmetatable() string. A
-- fiber that would block checks that it can suspend before it queues.
local K = ...
local E = K.rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local suspend, wake, check_suspend = K.suspend, K.wake, K.check_suspend
local check_wait, check_yieldable = K.check_wait, K.check_yieldable
local q_new, q_push, q_pop, q_remove = K.q_new, K.q_push, K.q_pop, K.q_remove
local INTERRUPTED, SUSPEND = K.INTERRUPTED, K.SUSPEND
local co_yield = K.co_yield -- the raw one (the global is the fiber-aware wrapper)
local setmetatable, type, error = setmetatable, type, error
local raw_getmetatable = K.debug.getmetatable
local current = K.current
local hexid = K.hexid

local class = K.class

-- The running fiber, for a function that may block. There is none only in
-- a finalizer run by the scheduler's own thread, which cannot yield.
local function blocking_fiber()
  local f = current()
  if not f then check_yieldable() end
  return f
end

---------------------------------------------------------------------------
local mutex_methods = {}
local mutex_mt = class('mutex', mutex_methods)
local function is_mutex(m) return raw_getmetatable(m) == mutex_mt end

-- The caller has checked that it can suspend if the mutex is locked.
local function mutex_acquire(m, f)
  if not m.locked then
    m.locked = true
    return
  end
  q_push(m.q, f)
  suspend(f, nil) -- ownership is handed over by unlock
end

function mutex_methods.lock(m)
  if not is_mutex(m) then raise_errno(E.EINVAL, 1) end
  local f = blocking_fiber()
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  if not m.locked then
    m.locked = true
    return
  end
  check_yieldable()
  q_push(m.q, f)
  -- suspend(f, nil), inlined: a waiting fiber's stack stays small
  co_yield(SUSPEND) -- ownership is handed over by unlock
end

function mutex_methods.try_lock(m)
  if not is_mutex(m) then raise_errno(E.EINVAL, 1) end
  if m.locked then return false end
  m.locked = true
  return true
end

local function mutex_release(m)
  local nxt = q_pop(m.q)
  if nxt then
    wake(nxt)
  else
    m.locked = false
  end
end

function mutex_methods.unlock(m)
  if not is_mutex(m) then raise_errno(E.EINVAL, 1) end
  if not m.locked then raise_errno(E.EPERM) end
  mutex_release(m)
end

K.builtin_modules.mutex = {
  new = function()
    local m = setmetatable({ locked = false, q = false }, mutex_mt)
    m.q = q_new(m)
    return m
  end,
}

---------------------------------------------------------------------------
local rmutex_methods = {}
local rmutex_mt = class('recursive_mutex', rmutex_methods)
local MAX_LEVELS = 2147483647
local function is_rmutex(m) return raw_getmetatable(m) == rmutex_mt end

function rmutex_methods.lock(m)
  if not is_rmutex(m) then raise_errno(E.EINVAL, 1) end
  local f = blocking_fiber()
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  if m.owner == f then
    if m.levels == MAX_LEVELS then raise_errno(E.EOVERFLOW) end
    m.levels = m.levels + 1
    return
  end
  if not m.owner then
    m.owner, m.levels = f, 1
    return
  end
  check_yieldable()
  q_push(m.q, f)
  suspend(f, nil) -- unlock makes us the owner before waking us
end

function rmutex_methods.try_lock(m)
  if not is_rmutex(m) then raise_errno(E.EINVAL, 1) end
  local f = blocking_fiber()
  if m.owner == f then
    if m.levels == MAX_LEVELS then return false end
    m.levels = m.levels + 1
    return true
  end
  if m.owner then return false end
  m.owner, m.levels = f, 1
  return true
end

function rmutex_methods.unlock(m)
  if not is_rmutex(m) then raise_errno(E.EINVAL, 1) end
  if m.owner ~= current() then raise_errno(E.EPERM) end
  m.levels = m.levels - 1
  if m.levels > 0 then return end
  local nxt = q_pop(m.q)
  if nxt then
    m.owner, m.levels = nxt, 1
    wake(nxt)
  else
    m.owner = false
  end
end

K.builtin_modules.recursive_mutex = {
  -- owner is false (not nil) when unlocked: absent keys go to __index
  new = function()
    local m = setmetatable({ owner = false, levels = 0, q = false }, rmutex_mt)
    m.q = q_new(m)
    return m
  end,
}

---------------------------------------------------------------------------
local cond_methods = {}
local cond_mt = class('condition_variable', cond_methods)
local function is_cond(c) return raw_getmetatable(c) == cond_mt end

-- An interrupted waiter leaves the queue, so it never steals a notification.
local function cond_interrupter(f, c)
  q_remove(c.q, f)
  wake(f, INTERRUPTED)
end

function cond_methods.wait(c, m)
  if not is_cond(c) then raise_errno(E.EINVAL, 1) end
  if not is_mutex(m) then raise_errno(E.EINVAL, 2) end
  if not m.locked then raise_errno(E.EPERM) end
  local f = blocking_fiber()
  check_suspend(f)
  mutex_release(m)
  q_push(c.q, f)
  local r = suspend(f, cond_interrupter, c)
  -- Always re-acquire before returning or raising.
  mutex_acquire(m, f)
  if r == INTERRUPTED then raise_core('interrupted') end
end

function cond_methods.notify_one(c)
  if not is_cond(c) then raise_errno(E.EINVAL, 1) end
  local f = q_pop(c.q)
  if f then wake(f) end
end

function cond_methods.notify_all(c)
  if not is_cond(c) then raise_errno(E.EINVAL, 1) end
  local q = c.q
  local f = q_pop(q)
  while f do
    wake(f)
    f = q_pop(q)
  end
end

K.builtin_modules.condition_variable = {
  new = function() return setmetatable({ q = q_new() }, cond_mt) end,
}

---------------------------------------------------------------------------
-- future: a shared state between a promise (userdata, so that collecting
-- it unsatisfied can break the future) and a future.
local getfenv_u, setfenv_u = K.debug.getfenv, K.debug.setfenv
local BROKEN = {}
local future_methods, promise_methods = {}, {}
local future_mt = class('future', future_methods)
local promise_base = newproxy(true)
local promise_mt = getmetatable(promise_base)
class('promise', promise_methods, nil, promise_mt)

local function wake_all(q, a)
  local f = q_pop(q)
  while f do
    wake(f, a)
    f = q_pop(q)
  end
end

local function satisfy(st, ok, v)
  st.state = ok and 'value' or 'error'
  st.value = v
  wake_all(st.waiters)
end

promise_mt.__gc = function(p)
  local st = getfenv_u(p).st
  st.promise_alive = false
  if st.state == 'pending' then
    st.state = 'broken'
    wake_all(st.waiters, BROKEN)
  end
end

local function promise_state(p)
  if raw_getmetatable(p) ~= promise_mt then raise_errno(E.EINVAL, 1) end
  return getfenv_u(p).st
end

function promise_methods.set_value(p, v)
  local st = promise_state(p)
  if st.state ~= 'pending' then raise_core('promise_already_satisfied') end
  satisfy(st, true, v)
end

function promise_methods.set_error(p, e)
  local st = promise_state(p)
  if e == nil then raise_errno(E.EINVAL, 2) end
  if st.state ~= 'pending' then raise_core('promise_already_satisfied') end
  satisfy(st, false, e)
end

local function future_interrupter(f, st)
  q_remove(st.waiters, f)
  wake(f, INTERRUPTED)
end

function future_methods.get(fu)
  if raw_getmetatable(fu) ~= future_mt then raise_errno(E.EINVAL, 1) end
  local st = fu.st
  local f = blocking_fiber()
  check_wait(f)
  if st.state == 'pending' then
    check_yieldable()
    q_push(st.waiters, f)
    local r = suspend(f, future_interrupter, st)
    if r == INTERRUPTED then raise_core('interrupted') end
  end
  if st.state == 'value' then return st.value end
  if st.state == 'error' then error(st.value, 0) end
  raise_core('broken_promise')
end

K.builtin_modules.future = {
  new = function()
    local st = { state = 'pending', waiters = false, promise_alive = true }
    local p = newproxy(promise_base)
    setfenv_u(p, { st = st })
    local fu = setmetatable({ st = st }, future_mt)
    st.waiters = q_new(fu)
    return p, fu
  end,
}

---------------------------------------------------------------------------
-- Reports the objects fibers are still blocked on, in the order they got
-- their first current waiter.
function K.report_deadlocks()
  local objs = {}
  for obj in pairs(K.waited) do objs[#objs + 1] = obj end
  table.sort(objs, function(a, b) return K.waited[a] < K.waited[b] end)
  local lines = {}
  for i = 1, #objs do
    local obj = objs[i]
    local mt = raw_getmetatable(obj)
    if mt == mutex_mt or mt == rmutex_mt then
      lines[#lines + 1] = '\tNo scheduled fibers remaining to unlock mutex ' .. hexid(obj)
    elseif mt == future_mt and obj.st.promise_alive then
      lines[#lines + 1] = '\tUnderlying promise for future ' .. hexid(obj) .. ' is broken'
    end
  end
  if #lines > 0 then
    K.rt.stderr_write('Possible deadlock(s) detected during VM ' .. K.vm_id
      .. ' shutdown:\n' .. table.concat(lines, '\n') .. '\n')
  end
end
