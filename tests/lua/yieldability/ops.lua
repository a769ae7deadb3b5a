-- Suspending operations for the yieldability tests. Each entry makes a
-- fresh setup and returns (op, after): `op` suspends the calling fiber
-- (or would have to); `after(suspended)` runs once the fibers the setup
-- spawned had their turn and says whether the state is the expected one.
local time = require 'time'
local mutex = require 'mutex'
local recursive_mutex = require 'recursive_mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'
local system = require 'system'

local ops = {}
local function op(name, make) ops[#ops + 1] = { name = name, make = make } end

op('this_fiber.yield', function()
  return function() this_fiber.yield() end, function() return true end
end)
op('time.sleep', function()
  return function() time.sleep(0.001) end, function() return true end
end)
op('timer:wait', function()
  local t = time.steady_timer.new()
  t:expires_after(0.001)
  -- a refused wait left nothing for cancel() to abort
  return function() t:wait() end, function(suspended) return t:cancel() == 0 end
end)
op('mutex:lock', function()
  local m = mutex.new()
  m:lock()
  spawn(function() m:unlock() end)
  -- suspended: we own it now; refused: the unlock freed it
  return function() m:lock() end, function(suspended) return m:try_lock() ~= suspended end
end)
op('recursive_mutex:lock', function()
  local m = recursive_mutex.new()
  spawn(function() m:lock() this_fiber.yield() m:unlock() end)
  this_fiber.yield()
  return function() m:lock() end, function(suspended)
    local free
    spawn(function() free = m:try_lock() if free then m:unlock() end end):join()
    return free ~= suspended
  end
end)
op('condition_variable:wait', function()
  local m, cv = mutex.new(), condition_variable.new()
  m:lock()
  spawn(function() cv:notify_all() end)
  -- either way the caller holds the mutex afterwards
  return function() cv:wait(m) end, function() return not m:try_lock() end
end)
op('future:get', function()
  local p, fu = future.new()
  spawn(function() p:set_value(42) end)
  return function() assert(fu:get() == 42) end, function() return fu:get() == 42 end
end)
op('fiber:join', function()
  local h = spawn(function() this_fiber.yield() end)
  return function() h:join() end, function(suspended) return h.joinable ~= suspended end
end)
op('system.out:write_some', function()
  return function() system.out:write_some('') end, function() return true end
end)
op('system.in_:read_some', function(can_suspend)
  if can_suspend then return nil end -- would wait for input
  return function() system.in_:read_some(byte_span.new(1)) end, function() return true end
end)
list = ops -- modules export their globals
