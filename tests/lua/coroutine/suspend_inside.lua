-- suspending inside a user coroutine suspends the whole fiber and resumes
-- the coroutine transparently
local time = require 'time'
spawn(function() print('other fiber runs meanwhile') end)
local co = coroutine.create(function(a)
  print('co got', a)
  this_fiber.yield()
  time.sleep(0.001)
  print('co after suspending')
  local b = coroutine.yield('first')
  print('co got', b)
  return 'last'
end)
print(coroutine.resume(co, 'x'))
print(coroutine.status(co))
print(coroutine.resume(co, 'y'))
print(coroutine.status(co))
