-- system.exit while other fibers wait on the ring (a timer and a read of a
-- stdin that never closes): the VM closes at once, the executor cancels and
-- reaps those ops, the process exits with the code.
-- exit: 4
-- stdin-open
local time = require 'time'
local system = require 'system'
spawn(function() time.sleep(3600) end)
spawn(function() system.in_:read_some(byte_span.new(8)) end)
this_fiber.yield()
print('exiting')
system.exit(4)
