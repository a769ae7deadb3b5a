-- exit: 5
-- system.exit inside pcall (which can yield) terminates the VM
local system = require 'system'
spawn(function() print('never runs') end)
pcall(system.exit, 5)
print('not reached')
