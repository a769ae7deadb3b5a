-- unlocking an unlocked mutex is EPERM; any fiber may unlock
local generic_error = require 'generic_error'
local m = require('mutex').new()
local ok, e = pcall(m.unlock, m)
print(ok, e == generic_error.EPERM, tostring(e.category), tostring(e))
m:lock()
spawn(function() m:unlock() print('unlocked by another fiber') end):join()
print(m:try_lock())
local ok2, e2 = pcall(function() return m.nope end)
print(ok2, tostring(e2))
