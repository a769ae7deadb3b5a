-- a raising root handler of a spawned fiber closes the VM; no panic report
local m = require('mutex').new()
m:lock()
spawn(function()
  scope_cleanup_push(function() error('handler failed') end)
end)
spawn(function() m:lock() end)  -- would be reported as a deadlock otherwise
this_fiber.yield()
print('not reached')
