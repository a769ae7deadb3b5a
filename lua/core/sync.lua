-- mutex, recursive_mutex, condition_variable, future (spec/core.md §4).
--
-- Invariants: VM-local objects; waiters are fiber records in FIFO wait
-- queues (K.q_*, O(1) per operation). Mutexes and futures name the object
-- as their queue's owner on push, so only objects that have waiters NOW
-- are tracked for the teardown deadlock report (K.waited). An object's
-- state lives in a private weak-keyed map, never in the object: an object
-- is recognised by having an entry there (so neither the forgeable
-- getmetatable() string nor a copied metatable passes), and no state
-- refers to its object while no fiber waits on it (objects stay
-- collectable: LuaJIT's weak keys are not ephemerons). A fiber that would
-- block checks that it can suspend before it queues.
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
local current, fiber_or_nil = K.current, K.fiber_or_nil
local hexid = K.hexid

local class = K.class

-- The running fiber, for a function that may block. There is none only in
-- a finalizer run by the scheduler's own thread, which cannot yield.
local function blocking_fiber()
  local f = fiber_or_nil()
  if not f then check_yieldable() end
  return f
end

-- Instances handed to user code are empty tables with a locked metatable;
-- their state (wait queues holding fiber records, owners) lives in these
-- weak-keyed maps, out of user code's reach. A method looks its argument up
-- here, so a table that only claims a class name is refused with EINVAL.
local function private_states() return setmetatable({}, { __mode = 'k' }) end
local function state_lookup(states)
  return function(obj, arg)
    local st = states[obj]
    if not st then raise_errno(E.EINVAL, arg) end
    return st
  end
end

---------------------------------------------------------------------------
local mutex_methods = {}
local mutex_mt = class('mutex', mutex_methods)
local mutex_of = private_states()
local mutex_state = state_lookup(mutex_of)

-- The caller has checked that it can suspend if the mutex is locked.
-- `m` is the state of the mutex `obj`.
local function mutex_acquire(m, f, obj)
  if not m.locked then
    m.locked = true
    return
  end
  q_push(m.q, f, obj)
  suspend(f, nil) -- ownership is handed over by unlock
end

function mutex_methods.lock(m)
  local obj = m
  m = mutex_state(obj, 1)
  local f = blocking_fiber()
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  if not m.locked then
    m.locked = true
    return
  end
  check_yieldable()
  q_push(m.q, f, obj)
  -- suspend(f, nil), inlined: a waiting fiber's stack stays small
  co_yield(SUSPEND) -- ownership is handed over by unlock
end

function mutex_methods.try_lock(m)
  m = mutex_state(m, 1)
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
  m = mutex_state(m, 1)
  if not m.locked then raise_errno(E.EPERM) end
  mutex_release(m)
end

K.builtin_modules.mutex = {
  new = function()
    local m = setmetatable({}, mutex_mt)
    mutex_of[m] = { locked = false, q = q_new() }
    return m
  end,
}

---------------------------------------------------------------------------
local rmutex_methods = {}
local rmutex_mt = class('recursive_mutex', rmutex_methods)
local MAX_LEVELS = 2147483647
local rmutex_of = private_states()
local rmutex_state = state_lookup(rmutex_of)

function rmutex_methods.lock(m)
  local obj = m
  m = rmutex_state(obj, 1)
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
  q_push(m.q, f, obj)
  suspend(f, nil) -- unlock makes us the owner before waking us
end

function rmutex_methods.try_lock(m)
  m = rmutex_state(m, 1)
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
  m = rmutex_state(m, 1)
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
    local m = setmetatable({}, rmutex_mt)
    rmutex_of[m] = { owner = false, levels = 0, q = q_new() }
    return m
  end,
}

---------------------------------------------------------------------------
local cond_methods = {}
local cond_mt = class('condition_variable', cond_methods)
local cond_of = private_states()
local cond_state = state_lookup(cond_of)

-- An interrupted waiter leaves the queue, so it never steals a notification.
local function cond_interrupter(f, c)
  q_remove(c.q, f)
  wake(f, INTERRUPTED)
end

function cond_methods.wait(c, m)
  c = cond_state(c, 1)
  local mutex = m
  m = mutex_state(mutex, 2)
  if not m.locked then raise_errno(E.EPERM) end
  local f = blocking_fiber()
  check_suspend(f)
  mutex_release(m)
  q_push(c.q, f)
  local r = suspend(f, cond_interrupter, c)
  -- Always re-acquire before returning or raising.
  mutex_acquire(m, f, mutex)
  if r == INTERRUPTED then raise_core('interrupted') end
end

function cond_methods.notify_one(c)
  c = cond_state(c, 1)
  local f = q_pop(c.q)
  if f then wake(f) end
end

function cond_methods.notify_all(c)
  c = cond_state(c, 1)
  local q = c.q
  local f = q_pop(q)
  while f do
    wake(f)
    f = q_pop(q)
  end
end

K.builtin_modules.condition_variable = {
  new = function()
    local c = setmetatable({}, cond_mt)
    cond_of[c] = { q = q_new() }
    return c
  end,
}

---------------------------------------------------------------------------
-- future: a shared state between a promise (userdata, so that collecting
-- it unsatisfied can break the future) and a future.
local getfenv_u, setfenv_u = K.debug.getfenv, K.debug.setfenv
local BROKEN = {}
local future_methods, promise_methods = {}, {}
local future_mt = class('future', future_methods)
local future_of = private_states()
local future_state = state_lookup(future_of)
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

-- Runs at any moment, also while the VM closes; never on user code.
promise_mt.__gc = function(p)
  if p == promise_base then return end -- the prototype has no state
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
  local st = future_state(fu, 1)
  local f = blocking_fiber()
  check_wait(f)
  if st.state == 'pending' then
    check_yieldable()
    q_push(st.waiters, f, fu)
    local r = suspend(f, future_interrupter, st)
    if r == INTERRUPTED then raise_core('interrupted') end
  end
  if st.state == 'value' then return st.value end
  if st.state == 'error' then error(st.value, 0) end
  raise_core('broken_promise')
end

K.builtin_modules.future = {
  new = function()
    local st = { state = 'pending', waiters = q_new(), promise_alive = true }
    local p = newproxy(promise_base)
    setfenv_u(p, { st = st })
    local fu = setmetatable({}, future_mt)
    future_of[fu] = st
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
    local future = future_of[obj]
    if mutex_of[obj] or rmutex_of[obj] then
      lines[#lines + 1] = '\tNo scheduled fibers remaining to unlock mutex ' .. hexid(obj)
    elseif future and future.promise_alive then
      lines[#lines + 1] = '\tUnderlying promise for future ' .. hexid(obj) .. ' is broken'
    end
  end
  if #lines > 0 then
    K.rt.stderr_write('Possible deadlock(s) detected during VM ' .. K.vm_id
      .. ' shutdown:\n' .. table.concat(lines, '\n') .. '\n')
  end
end
