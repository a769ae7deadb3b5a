-- get before set_value suspends; every waiter is woken (shared future)
local promise, future = require('future').new()
for i = 1, 2 do
  spawn(function() print('waiter', i, 'got', future:get()) end)
end
this_fiber.yield()
print('setting')
promise:set_value(42)
print('set')
this_fiber.yield()
print('late get', future:get())
