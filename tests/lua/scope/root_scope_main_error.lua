-- exit: 1
-- a main-fiber error closes the VM without running its root handlers
scope_cleanup_push(function() print('NOT printed') end)
spawn(function() print('NOT printed either') end)
error('main failed', 0)
