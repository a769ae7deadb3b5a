-- Fiber handles (`spawn`, their metatable and finalizer, the methods join,
-- detach, interrupt and their properties) and the this_fiber functions
-- besides yield (moved out of lua/core/scheduler.lua): a lazy core chunk,
-- loaded by a VM's first `spawn` (no handle exists before) or first read
-- of one of these this_fiber fields (most actors never do either, and
-- every VM would otherwise keep their code). It may
-- be loaded at any moment, also by a finalizer while the VM closes:
-- `K.load_lazy_chunk` is a plain C function that builds nothing through
-- mlua.
--
-- Invariants:
-- * The scheduler's count of interrupted and forbid-suspend fibers
--   (`guards`) stays its local; this chunk changes it through `add_guards`.
-- * A fiber's results are handed over once: a joined fiber is JOINED_OK
--   or JOINED_CAUGHT (it ended by an interruption), and can be neither
--   joined nor detached again.
local K, FAILED, ONE_RESULT, JOINED_OK, JOINED_CAUGHT, joiners, add_guards, report_panic,
  no_fiber, LOG, log, new_fiber_job, pack, is_run_over, VM_CLOSING = ...
local E = K.rt.errno
local raise_core, raise_errno, is_interrupted = K.raise_core, K.raise_errno, K.is_interrupted
local current, wake, suspend = K.fiber_or_nil, K.wake, K.suspend
local check_wait, check_yieldable = K.check_wait, K.check_yieldable
local W1, RESULTS, INTERRUPTER, INTERRUPTED = K.W1, K.RESULTS, K.INTERRUPTER, K.INTERRUPTED
local hexid = K.hexid
local getfenv_u, setfenv_u, raw_getmetatable = K.debug.getfenv, K.debug.setfenv, K.debug.getmetatable
local unpack, error, type, select = unpack, error, type, select

-- A handle is a userdata sharing `fiber_handle_base`'s metatable; its
-- userdata environment is its fiber record. Anything else gets EINVAL:
-- the env of another value (a user function's globals, ...) must never be
-- taken for a record.
local fiber_handle_base = newproxy(true)
local fiber_hmt = getmetatable(fiber_handle_base)
fiber_hmt.__metatable = 'fiber'
local function record_of_handle(h)
  if raw_getmetatable(h) ~= fiber_hmt then raise_errno(E.EINVAL, 1) end
  return getfenv_u(h)
end

local function joined(t)
  local r = t[RESULTS]
  return r == JOINED_OK or r == JOINED_CAUGHT
end

local fiber_methods = {}

local function join_interrupter(f, t)
  joiners[t] = nil
  wake(f, INTERRUPTED)
end

-- A joined fiber's results are handed over and dropped: `results` becomes
-- JOINED_OK or JOINED_CAUGHT (the fiber ended by an interruption).
function fiber_methods.join(h)
  local t = record_of_handle(h)
  local f = current()
  if t.detached or joined(t) or joiners[t] then
    raise_errno(E.EINVAL, 1)
  end
  if t == f then raise_errno(E.EDEADLK) end
  check_wait(f)
  if t[RESULTS] == false then
    check_yieldable()
    joiners[t] = f
    local r = suspend(f, join_interrupter, t)
    if r == INTERRUPTED then raise_core('interrupted') end
  end
  joiners[t] = nil
  local results = t[RESULTS]
  if results == ONE_RESULT then
    local v = t[W1]
    t[RESULTS], t[W1] = JOINED_OK, nil
    return v
  elseif results ~= FAILED then
    t[RESULTS] = JOINED_OK
    return unpack(results, 2, results.n)
  elseif is_interrupted(t.err) then
    t[RESULTS] = JOINED_CAUGHT
    return
  else
    t[RESULTS] = JOINED_OK
    error(t.err, 0)
  end
end

function fiber_methods.detach(h)
  local t = record_of_handle(h)
  if t.detached or joined(t) or joiners[t] then raise_errno(E.EINVAL, 1) end
  t.detached = true
  if t[RESULTS] == FAILED and not is_interrupted(t.err) then
    report_panic(t)
  end
end

function fiber_methods.interrupt(h)
  local t = record_of_handle(h)
  if t[RESULTS] ~= false then return end
  if not t.interrupted then add_guards(1) end
  t.interrupted = true
  if LOG then log('fiber interrupted', hexid(t), t[INTERRUPTER] and 'while suspended' or nil) end
  -- (a fiber that suspended with interruption disabled may have left its
  -- interrupter: actors.lua registers it without looking, see there)
  local i = t[INTERRUPTER]
  if i and t.int_disabled == 0 then
    t[INTERRUPTER] = false
    i(t, t[W1])
  end
end

local fiber_props = {}
function fiber_props.interruption_caught(t)
  if not joined(t) then raise_errno(E.EINVAL, 1) end
  return t[RESULTS] == JOINED_CAUGHT
end
function fiber_props.joinable(t)
  return not t.detached and not joined(t) and not joiners[t]
end

-- this_fiber (yield stays in the scheduler: its refusal message is
-- registered at boot). The functions run in a fiber: `no_fiber` otherwise.
local this_fiber = {}
local this_fiber_props = {}

local function running()
  local f = current()
  if not f then no_fiber() end
  return f
end

function this_fiber.forbid_suspend()
  local f = running()
  f.susp_forbidden = f.susp_forbidden + 1
  add_guards(1)
end
function this_fiber.allow_suspend()
  local f = running()
  if f.susp_forbidden == 0 then raise_core('suspension_already_allowed') end
  f.susp_forbidden = f.susp_forbidden - 1
  add_guards(-1)
end
function this_fiber.disable_interruption()
  local f = running()
  f.int_disabled = f.int_disabled + 1
end
function this_fiber.restore_interruption()
  local f = running()
  if f.int_disabled == 0 then raise_core('interruption_already_allowed') end
  f.int_disabled = f.int_disabled - 1
end
function this_fiber_props.local_()
  local f = running()
  f = f.locals_owner or f
  local t = f.local_
  if not t then
    t = {}
    f.local_ = t
  end
  return t
end
function this_fiber_props.is_main() return running().is_main == true end
function this_fiber_props.id()
  local f = running()
  if f.module then return K.vm_id end
  return hexid(f)
end

fiber_hmt.__index = function(h, k)
  local m = fiber_methods[k]
  if m then return m end
  local p = fiber_props[k]
  if p then return p(record_of_handle(h)) end
  raise_core('bad_index', 'index', 2)
end
fiber_hmt.__newindex = function() raise_errno(E.EPERM) end
-- Runs at any moment (inside another fiber, in the scheduler, while the VM
-- closes): it touches only the record, and reports protected.
fiber_hmt.__gc = function(h)
  if h == fiber_handle_base then return end -- the prototype has no record
  local t = getfenv_u(h)
  if not t.detached and not joined(t) then
    t.detached = true
    if t[RESULTS] == FAILED and not is_interrupted(t.err) then
      report_panic(t)
    end
  end
end

-- The `spawn` global (lua/core/scheduler.lua's stub tail-calls it).
local function spawn(fn, ...)
  if type(fn) ~= 'function' then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  -- (a finalizer run while the VM closes: the fiber could never run)
  if is_run_over() then error(VM_CLOSING, 0) end
  local f = new_fiber_job(select('#', ...) > 0 and pack(fn, ...) or fn, nil)
  local h = newproxy(fiber_handle_base)
  setfenv_u(h, f)
  return h
end

return {
  spawn = spawn, this_fiber = this_fiber, this_fiber_props = this_fiber_props,
}
