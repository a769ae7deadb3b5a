-- locking a free mutex does not yield; try_lock is false while locked
local mutex = require 'mutex'
local m = mutex.new()
print(getmetatable(m))
spawn(function() print('other fiber') end)
m:lock()
print('locked without yielding')
print('try_lock while locked (even by self):', m:try_lock())
m:unlock()
print('try_lock free:', m:try_lock())
m:unlock()
this_fiber.yield()
