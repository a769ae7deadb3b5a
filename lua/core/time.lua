-- time: sleep, steady/system timers and clocks (spec/core.md §5).
-- Every wait is an IORING_OP_TIMEOUT on the actor's ring, except waits that
-- are already due: those are an IORING_OP_NOP (rt.yield_op).
local K = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local setmetatable, type, error = setmetatable, type, error
local raw_getmetatable = K.debug.getmetatable
local q_new, q_push, q_pop, q_remove = K.q_new, K.q_push, K.q_pop, K.q_remove
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

function time.sleep(secs)
  local ns = to_nanos(secs, 1)
  local f = current()
  check_suspend(f)
  -- Nothing to wait for: a NOP still lets every other ready fiber and
  -- completion go first, without arming a kernel timer.
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
  return c, tp, is_tp
end

local steady_clock, steady_tp, is_steady_tp = clock('steady_clock', false, true)
local system_clock, system_tp, is_system_tp = clock('system_clock', true, true)
local hr_clock = clock('high_resolution_clock', true, false)
hr_clock.is_steady = false
time.steady_clock, time.system_clock, time.high_resolution_clock =
  steady_clock, system_clock, hr_clock

---------------------------------------------------------------------------
-- Timers. Each wait() is its own absolute timeout op, so several fibers may
-- wait on one timer; cancel() and a new expiry abort all of them.
local function timer_class(name, realtime, now_ns, tp, is_tp)
  local methods = {}
  -- A timer handed to user code is an empty table; its state (pending op
  -- ids, which could cancel any op of the ring) lives here, out of reach.
  local state_of = setmetatable({}, { __mode = 'k' })
  local function check(t)
    local st = state_of[t]
    if not st then raise_errno(E.EINVAL, 1) end
    return st
  end
  local mt = K.class(name, methods, {
    expiry = function(t) return tp(check(t).expiry_ns) end,
  })

  -- Pending waits (op ids) are kept in a wait queue, in wait order, so that
  -- cancellation completes (and wakes the waiters) in FIFO order; a wait
  -- leaves it in O(1) when its op completes.
  local function cancel_all(t)
    local pending = t.pending
    local n = pending.n
    local id = q_pop(pending)
    while id do
      t.aborted[id] = true
      rt.cancel(id)
      id = q_pop(pending)
    end
    return n
  end

  function methods.expires_after(t, secs)
    t = check(t)
    local ns = to_nanos(secs, 2)
    local n = cancel_all(t)
    t.expiry_ns = now_ns() + ns
    return n
  end

  function methods.expires_at(t, point)
    t = check(t)
    if not is_tp(point) then raise_errno(E.EINVAL, 2) end
    local n = cancel_all(t)
    t.expiry_ns = rawget(point, 'ns')
    return n
  end

  function methods.cancel(t)
    t = check(t)
    return cancel_all(t)
  end

  function methods.wait(t)
    t = check(t)
    local f = current()
    check_suspend(f)
    -- An expiry already past needs no kernel timer (see time.sleep).
    local expiry = t.expiry_ns
    local id = expiry <= now_ns() and rt.yield_op() or rt.sleep_until(expiry, realtime)
    q_push(t.pending, id)
    local ok, res = K.raw_pcall(await_op, f, id)
    q_remove(t.pending, id)
    local aborted = t.aborted[id]
    t.aborted[id] = nil
    if not ok then error(res, 0) end
    if aborted and res == -E.ECANCELED then error(K.operation_aborted(), 0) end
  end

  return {
    new = function()
      local t = setmetatable({}, mt)
      state_of[t] = { expiry_ns = 0, pending = q_new(), aborted = {} }
      return t
    end,
  }
end

time.steady_timer = timer_class('steady_timer', false,
  function() return rt.clock(false) end, steady_tp, is_steady_tp)
time.system_timer = timer_class('system_timer', true,
  function() return rt.clock(true) end, system_tp, is_system_tp)

K.builtin_modules.time = time
