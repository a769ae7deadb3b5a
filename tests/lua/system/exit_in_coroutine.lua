-- exit: 6
-- system.exit inside a user coroutine terminates the whole VM
local system = require 'system'
coroutine.wrap(function() system.exit(6) end)()
print('not reached')
