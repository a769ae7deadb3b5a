-- time: sleep, steady/system timers and clocks (spec/core.md §5).
-- Every wait is an IORING_OP_TIMEOUT on the actor's ring, except waits that
-- are already due: those are an IORING_OP_NOP (sleep(0): one NOP per
-- scheduler turn for all of them, K.sleep0; rt.yield_op). The waits on
-- one timer's expiry share one op (see "Timers").
local K = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local setmetatable, type, error = setmetatable, type, error
local raw_getmetatable = K.debug.getmetatable
local q_new, q_push, q_pop, q_remove = K.q_new, K.q_push, K.q_pop, K.q_remove
local wake, watch_op, co_yield = K.wake, K.watch_op, K.co_yield
local SUSPEND, INTERRUPTED = K.SUSPEND, K.INTERRUPTED
local W1, INTERRUPTER = K.W1, K.INTERRUPTER -- fiber record fields
local floor = math.floor
local MAX_SECONDS = 9.2e9 -- keeps nanoseconds below 2^63

-- Seconds (number) to whole nanoseconds, rounded up to the clock tick.
local function to_nanos(secs, arg)
  if type(secs) ~= 'number' then raise_errno(E.EINVAL, arg) end
  if secs ~= secs or secs < 0 or secs == math.huge then raise_errno(E.EDOM, arg) end
  if secs > MAX_SECONDS then raise_errno(E.EOVERFLOW, arg) end
  return math.ceil(secs * 1e9)
end

local time = {}

local sleep0 = K.sleep0
function time.sleep(secs)
  -- Nothing to wait for: a NOP still lets every other ready fiber and
  -- completion go first, without arming a kernel timer. The scheduler
  -- submits one NOP per turn for all the sleep(0)s of its batch.
  if secs == 0 then return sleep0() end
  local ns = to_nanos(secs, 1)
  local f = current()
  check_suspend(f)
  await_op(f, ns == 0 and rt.yield_op() or rt.sleep(ns))
end

---------------------------------------------------------------------------
-- Clocks and time points: a time point is {ns = <integer nanoseconds>}.
local function clock(name, realtime, with_arith)
  local tp_methods = {}
  local tp_mt = K.class(name .. '.time_point', tp_methods, {
    seconds_since_epoch = function(t) return rawget(t, 'ns') / 1e9 end,
  })
  local function tp(ns) return setmetatable({ ns = ns }, tp_mt) end
  local function is_tp(x) return raw_getmetatable(x) == tp_mt end
  local function delta(secs, arg)
    if type(secs) ~= 'number' then raise_errno(E.EINVAL, arg) end
    if secs ~= secs or secs == math.huge or secs == -math.huge then raise_errno(E.EDOM, arg) end
    return floor(secs * 1e9 + 0.5)
  end
  if with_arith then
    function tp_methods.add(t, secs) return tp(rawget(t, 'ns') + delta(secs, 2)) end
    function tp_methods.sub(t, secs) return tp(rawget(t, 'ns') - delta(secs, 2)) end
  end
  tp_mt.__add = function(a, b)
    if is_tp(a) then return tp(rawget(a, 'ns') + delta(b, 2)) end
    return tp(rawget(b, 'ns') + delta(a, 1))
  end
  tp_mt.__sub = function(a, b)
    if is_tp(b) then return (rawget(a, 'ns') - rawget(b, 'ns')) / 1e9 end
    return tp(rawget(a, 'ns') - delta(b, 2))
  end
  tp_mt.__eq = function(a, b) return rawget(a, 'ns') == rawget(b, 'ns') end
  tp_mt.__lt = function(a, b) return rawget(a, 'ns') < rawget(b, 'ns') end
  tp_mt.__le = function(a, b) return rawget(a, 'ns') <= rawget(b, 'ns') end
  local c = {
    now = function() return tp(rt.clock(realtime)) end,
    epoch = function() return tp(0) end,
  }
  return c, tp, is_tp, tp_methods
end

local steady_clock, steady_tp, is_steady_tp = clock('steady_clock', false, true)
local system_clock, system_tp, is_system_tp = clock('system_clock', true, true)
local hr_clock = clock('high_resolution_clock', true, false)
hr_clock.is_steady = false
time.steady_clock, time.system_clock, time.high_resolution_clock =
  steady_clock, system_clock, hr_clock

-- filesystem.clock (spec/io.md): file times, for filesystem.last_write_time.
-- Its epoch is the Unix epoch (Emilua leaves it unspecified), so converting
-- to and from system_clock keeps the count.
local file_clock, file_tp, is_file_tp, file_tp_methods = clock('filesystem.clock', true, true)
function file_clock.from_system(t)
  if not is_system_tp(t) then raise_errno(E.EINVAL, 1) end
  return file_tp(rawget(t, 'ns'))
end
function file_tp_methods.to_system(t)
  if not is_file_tp(t) then raise_errno(E.EINVAL, 1) end
  return system_tp(rawget(t, 'ns'))
end
K.file_clock, K.file_tp, K.is_file_tp = file_clock, file_tp, is_file_tp

---------------------------------------------------------------------------
-- Timers. All the fibers waiting on a timer for its current expiry share
-- one kernel op (an absolute IORING_OP_TIMEOUT, or a NOP if the expiry had
-- passed when it was armed): a "wait group" {id, waiters, st, aborted}.
-- The first wait arms it; later waits join its FIFO queue; its completion
-- wakes them all in wait order with its result. A new expiry or cancel()
-- detaches the group from the timer (st.group), marks it aborted and
-- cancels its op: its waiters then see operation_aborted (unless the
-- timeout had already fired), and the next wait arms a new group. An
-- interrupted waiter leaves the queue at once; when the last one leaves a
-- pending group, its op is cancelled too, so no kernel timer outlives its
-- waiters (and the VM can end). A group's op id is cancelled only while
-- its completion is still to come (the id may name another op later).
-- The group refers to the timer's private state, never to the timer
-- object: the waiting fibers' stacks keep the timer, and it is collected
-- once they left, even while its cancelled op is still in flight.
local function timer_class(name, realtime, now_ns, tp, is_tp)
  local methods = {}
  -- A timer handed to user code is an empty table; its state (the wait
  -- group, whose op id could cancel any op of the ring) lives here, out of
  -- reach.
  local state_of = setmetatable({}, { __mode = 'k' })
  local function check(t)
    local st = state_of[t]
    if not st then raise_errno(E.EINVAL, 1) end
    return st
  end
  local mt = K.class(name, methods, {
    expiry = function(t) return tp(check(t).expiry_ns) end,
  })

  -- Aborts the waits on the current expiry; returns how many there were.
  local function cancel_all(st)
    local g = st.group
    if not g then return 0 end
    st.group = false
    g.aborted = true
    rt.cancel(g.id)
    return g.waiters.n
  end

  -- The group's op completed (or was cancelled): wake every waiter, FIFO.
  local function group_done(g, res)
    local st = g.st
    if st.group == g then st.group = false end
    local q = g.waiters
    local f = q_pop(q)
    while f do
      wake(f, res)
      f = q_pop(q)
    end
  end

  -- A waiter interrupted while its group is pending (group_done clears
  -- the interrupter of those it wakes).
  local function leave_group(f, g)
    q_remove(g.waiters, f)
    wake(f, INTERRUPTED)
    if g.waiters.n == 0 and not g.aborted then
      g.aborted = true
      if g.st.group == g then g.st.group = false end
      rt.cancel(g.id)
    end
  end

  function methods.expires_after(t, secs)
    local st = check(t)
    local ns = to_nanos(secs, 2)
    local n = cancel_all(st)
    st.expiry_ns = now_ns() + ns
    return n
  end

  function methods.expires_at(t, point)
    local st = check(t)
    if not is_tp(point) then raise_errno(E.EINVAL, 2) end
    local n = cancel_all(st)
    st.expiry_ns = rawget(point, 'ns')
    return n
  end

  function methods.cancel(t)
    return cancel_all(check(t))
  end

  function methods.wait(t)
    local st = check(t)
    local f = current()
    check_suspend(f)
    local g = st.group
    if not g then
      -- An expiry already past needs no kernel timer (see time.sleep).
      local expiry = st.expiry_ns
      local id = expiry <= now_ns() and rt.yield_op() or rt.sleep_until(expiry, realtime)
      g = { id = id, waiters = q_new(), st = st, aborted = false }
      st.group = g
      watch_op(id, function(res) group_done(g, res) end)
    end
    q_push(g.waiters, f)
    -- suspend(f, leave_group, g), inlined: a waiting fiber's stack stays
    -- small
    if f.int_disabled == 0 then f[INTERRUPTER], f[W1] = leave_group, g end
    local res = co_yield(SUSPEND)
    if res == INTERRUPTED then raise_core('interrupted') end
    if g.aborted and res == -E.ECANCELED then error(K.operation_aborted(), 0) end
  end

  return {
    new = function()
      local t = setmetatable({}, mt)
      state_of[t] = { expiry_ns = 0, group = false }
      return t
    end,
  }
end

time.steady_timer = timer_class('steady_timer', false,
  function() return rt.clock(false) end, steady_tp, is_steady_tp)
time.system_timer = timer_class('system_timer', true,
  function() return rt.clock(true) end, system_tp, is_system_tp)

K.builtin_modules.time = time
