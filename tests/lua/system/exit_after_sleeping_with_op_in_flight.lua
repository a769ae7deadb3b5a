-- exit: 4
-- system.exit right after the VM slept in its ring while another fiber's
-- op stays in flight ends the program (it spun forever once: the step
-- that slept said the VM was over, and nothing ended it).
local pipe = require 'pipe'
local time = require 'time'
local system = require 'system'
local r, w = pipe.pair()
spawn(function() r:read_some(byte_span.new(1)) end):detach()
time.sleep(0.001)
print('exiting with a read in flight')
system.exit(4)
