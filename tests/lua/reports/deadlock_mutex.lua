-- fibers blocked on a mutex at shutdown are reported
local m = require('mutex').new()
m:lock()
spawn(function() m:lock() end)
spawn(function() m:lock() end)
print('main ends holding the lock')
