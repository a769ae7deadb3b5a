-- exit: 1
-- A main-fiber panic closes the VM although a fiber still sleeps on the ring.
local time = require 'time'
spawn(function() time.sleep(3600) end)
this_fiber.yield()
error('giving up', 0)
