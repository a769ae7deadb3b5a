-- exit: 3
-- system.exit(n) ends the VM with status n; nothing else runs
local system = require 'system'
scope_cleanup_push(function() print('cleanup handlers do not run') end)
spawn(function() print('pending fibers do not run') end)
print('exiting')
system.exit(3)
print('not reached')
