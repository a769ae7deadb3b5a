-- sleep(0) and waits on expired timers need no kernel timer, and keep their
-- semantics: every other ready fiber runs first, they are interruption
-- points, and a cancelled wait is aborted
local time = require 'time'

-- fibers taking turns with sleep(0) alternate
local log = {}
local a = spawn(function() for i = 1, 3 do log[#log + 1] = 'a' .. i time.sleep(0) end end)
local b = spawn(function() for i = 1, 3 do log[#log + 1] = 'b' .. i time.sleep(0) end end)
a:join() b:join()
print(table.concat(log, ' '))

-- a fiber interrupted while in sleep(0) sees `interrupted`
local spins = 0
local f = spawn(function()
  while true do time.sleep(0) spins = spins + 1 end
end)
this_fiber.yield()
f:interrupt()
f:join()
print('interrupted in sleep(0):', f.interruption_caught)

-- already interrupted: sleep(0) raises before waiting
local g = spawn(function()
  this_fiber.disable_interruption()
  this_fiber.yield()
  this_fiber.restore_interruption()
  time.sleep(0)
  print('not reached')
end)
this_fiber.yield()
g:interrupt()
g:join()
print('pending interruption raised:', g.interruption_caught)

-- with interruption disabled, sleep(0) returns normally
local h = spawn(function()
  this_fiber.disable_interruption()
  this_fiber.yield()
  time.sleep(0)
  print('sleep(0) with interruption disabled returned')
  this_fiber.restore_interruption()
end)
h:interrupt()
h:join()

-- waiting on an expired timer, interrupted
local t = time.steady_timer.new()
t:expires_at(time.steady_clock.now():sub(1))
local w = spawn(function()
  t:wait()
  print('not reached')
end)
this_fiber.yield()
w:interrupt()
w:join()
print('expired timer wait interrupted:', w.interruption_caught)

-- waiting on an expired timer, cancelled while waiting
local c = spawn(function()
  local ok, e = pcall(t.wait, t)
  print('expired timer wait cancelled:', ok, tostring(e))
end)
this_fiber.yield()
print('waits cancelled:', t:cancel())
c:join()

-- and a plain wait on it still returns
t:wait()
print('expired timer wait returned')
