-- interrupted waiters leave a wait queue from any position (first, middle,
-- last) and the others keep their FIFO order
local mutex = require 'mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'
local m, cv = mutex.new(), condition_variable.new()
local p, fu = future.new()
local cv_fibers, fu_fibers = {}, {}
for i = 1, 6 do
  cv_fibers[i] = spawn(function()
    m:lock()
    local ok = pcall(cv.wait, cv, m)
    print('cv waiter', i, ok and 'notified' or 'interrupted')
    m:unlock()
  end)
  fu_fibers[i] = spawn(function()
    local ok, v = pcall(fu.get, fu)
    print('future waiter', i, ok and v or 'interrupted')
  end)
end
this_fiber.yield()
for _, i in ipairs({ 1, 4, 6 }) do
  cv_fibers[i]:interrupt()
  fu_fibers[i]:interrupt()
end
this_fiber.yield()
cv:notify_all()
p:set_value('value')
for i = 1, 6 do
  cv_fibers[i]:join()
  fu_fibers[i]:join()
end
