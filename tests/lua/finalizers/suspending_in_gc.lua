-- A finalizer cannot suspend: it runs on LuaJIT's finalizer thread, in the
-- middle of whatever code triggered the collection. Every suspending call
-- fails there before it registers anything, the error is reported, and the
-- fiber the collection interrupted goes on normally.
local time = require 'time'
local mutex = require 'mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'
local m = mutex.new()
m:lock()
local cv = condition_variable.new()
local _, never = future.new()
local other = spawn(function() time.sleep(0.01) end)
local attempts = {
  { 'sleep', function() time.sleep(0) end },
  { 'yield', function() this_fiber.yield() end },
  { 'lock', function() m:lock() end },
  { 'wait', function() cv:wait(m) end },
  { 'get', function() never:get() end },
  { 'join', function() other:join() end },
  { 'coroutine.yield', function() coroutine.yield() end },
}
for _, a in ipairs(attempts) do
  local u = newproxy(true)
  getmetatable(u).__gc = function()
    print('finalizer tries ' .. a[1])
    a[2]()
    print('unreachable')
  end
  u = nil
  collectgarbage()
  collectgarbage()
end
-- The scheduler is intact: sleeping, yielding and joining still work.
time.sleep(0.001)
this_fiber.yield()
other:join()
m:unlock()
print('main done')
