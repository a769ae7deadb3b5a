-- mutex, recursive_mutex, condition_variable, future (spec/core.md §4).
-- VM-local objects; waiters are fiber records in FIFO arrays. Primitives
-- that ever had a waiter are remembered (in order) so that VM teardown can
-- report fibers still blocked on them.
local K = ...
local E = K.rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local suspend, wake, check_suspend = K.suspend, K.wake, K.check_suspend
local INTERRUPTED = K.INTERRUPTED
local setmetatable, getmetatable, type, error = setmetatable, getmetatable, type, error
local current = K.current
local hexid = K.hexid

local watched, watched_set = {}, setmetatable({}, { __mode = 'k' })
local function watch(obj)
  if not watched_set[obj] then
    watched_set[obj] = true
    watched[#watched + 1] = obj
  end
end

local function remove_waiter(q, f)
  for i = 1, #q do
    if q[i] == f then table.remove(q, i) return true end
  end
  return false
end

local class = K.class

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

local function mutex_acquire(m, f)
  if not m.locked then
    m.locked = true
    return
  end
  local q = m.q
  q[#q + 1] = f
  watch(m)
  suspend(f, nil) -- ownership is handed over by unlock
end

function mutex_methods.lock(m)
  m = mutex_state(m, 1)
  local f = current()
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  mutex_acquire(m, f)
end

function mutex_methods.try_lock(m)
  m = mutex_state(m, 1)
  if m.locked then return false end
  m.locked = true
  return true
end

local function mutex_release(m)
  local q = m.q
  if #q > 0 then
    wake(table.remove(q, 1))
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
    mutex_of[m] = { kind = 'mutex', locked = false, q = {} }
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
  m = rmutex_state(m, 1)
  local f = current()
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
  m.q[#m.q + 1] = f
  watch(m)
  suspend(f, nil) -- unlock makes us the owner before waking us
end

function rmutex_methods.try_lock(m)
  m = rmutex_state(m, 1)
  local f = current()
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
  if #m.q > 0 then
    local nxt = table.remove(m.q, 1)
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
    rmutex_of[m] = { kind = 'recursive_mutex', owner = false, levels = 0, q = {} }
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
  remove_waiter(c.q, f)
  wake(f, INTERRUPTED)
end

function cond_methods.wait(c, m)
  c = cond_state(c, 1)
  m = mutex_state(m, 2)
  if not m.locked then raise_errno(E.EPERM) end
  local f = current()
  check_suspend(f)
  mutex_release(m)
  local q = c.q
  q[#q + 1] = f
  local r = suspend(f, cond_interrupter, c)
  -- Always re-acquire before returning or raising.
  mutex_acquire(m, f)
  if r == INTERRUPTED then raise_core('interrupted') end
end

function cond_methods.notify_one(c)
  c = cond_state(c, 1)
  if #c.q > 0 then wake(table.remove(c.q, 1)) end
end

function cond_methods.notify_all(c)
  c = cond_state(c, 1)
  local q = c.q
  c.q = {}
  for i = 1, #q do wake(q[i]) end
end

K.builtin_modules.condition_variable = {
  new = function()
    local c = setmetatable({}, cond_mt)
    cond_of[c] = { q = {} }
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

local function satisfy(st, ok, v)
  st.state = ok and 'value' or 'error'
  st.value = v
  local w = st.waiters
  st.waiters = {}
  for i = 1, #w do wake(w[i]) end
end

promise_mt.__gc = function(p)
  local st = getfenv_u(p).st
  st.promise_alive = false
  if st.state == 'pending' then
    st.state = 'broken'
    local w = st.waiters
    st.waiters = {}
    for i = 1, #w do wake(w[i], BROKEN) end
  end
end

local function promise_state(p)
  if type(p) ~= 'userdata' or K.debug.getmetatable(p) ~= promise_mt then raise_errno(E.EINVAL, 1) end
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
  remove_waiter(st.waiters, f)
  wake(f, INTERRUPTED)
end

function future_methods.get(fu)
  local st = future_state(fu, 1)
  local f = current()
  check_suspend(f)
  if st.state == 'pending' then
    local w = st.waiters
    w[#w + 1] = f
    watch(st)
    local r = suspend(f, future_interrupter, st)
    if r == INTERRUPTED then raise_core('interrupted') end
  end
  if st.state == 'value' then return st.value end
  if st.state == 'error' then error(st.value, 0) end
  raise_core('broken_promise')
end

K.builtin_modules.future = {
  new = function()
    local st = { kind = 'future', state = 'pending', waiters = {}, promise_alive = true }
    local p = newproxy(promise_base)
    setfenv_u(p, { st = st })
    local fu = setmetatable({}, future_mt)
    future_of[fu] = st
    return p, fu
  end,
}

---------------------------------------------------------------------------
function K.report_deadlocks()
  local lines = {}
  for i = 1, #watched do
    local obj = watched[i]
    local kind = obj.kind
    if (kind == 'mutex' or kind == 'recursive_mutex') and #obj.q > 0 then
      lines[#lines + 1] = '\tNo scheduled fibers remaining to unlock mutex ' .. hexid(obj)
    elseif kind == 'future' and #obj.waiters > 0 and obj.promise_alive then
      lines[#lines + 1] = '\tUnderlying promise for future ' .. hexid(obj) .. ' is broken'
    end
  end
  if #lines > 0 then
    K.rt.stderr_write('Possible deadlock(s) detected during VM ' .. K.vm_id
      .. ' shutdown:\n' .. table.concat(lines, '\n') .. '\n')
  end
end
