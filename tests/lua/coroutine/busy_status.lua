-- while a coroutine suspends its fiber it is busy: status "normal",
-- resuming it from another fiber raises EPERM
local generic_error = require 'generic_error'
local co = coroutine.create(function()
  this_fiber.yield()
  this_fiber.yield()
  return 'done'
end)
local f = spawn(function() print('resume:', coroutine.resume(co)) end)
this_fiber.yield()
print('status:', coroutine.status(co))
local ok, e = pcall(coroutine.resume, co)
print(ok, e == generic_error.EPERM, tostring(e.category))
f:join()
print('status:', coroutine.status(co))
