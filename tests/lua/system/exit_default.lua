-- system.exit() exits with status 0; no deadlock report is printed
local system = require 'system'
local m = require('mutex').new()
m:lock()
spawn(function() m:lock() end)  -- no deadlock report after exit
print('exiting')
system.exit()
