-- failed fibers whose handles are still alive are reported when the VM
-- closes and collects the handles
local f = spawn(function() error('never joined', 0) end)
this_fiber.yield()
print('main ends')
