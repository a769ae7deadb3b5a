-- exit: 1
-- a main panic suppresses the deadlock report
local m = require('mutex').new()
m:lock()
spawn(function() m:lock() end)
this_fiber.yield()
error('main panics', 0)
