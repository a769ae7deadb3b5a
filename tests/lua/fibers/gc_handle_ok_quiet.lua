-- collected handles of fibers that succeed or were interrupted print nothing
collectgarbage('stop')
spawn(function() return 1 end)
local f = spawn(function() this_fiber.yield() end)
f:interrupt()
f = nil
this_fiber.yield()
this_fiber.yield()
collectgarbage('collect')
print('quiet')
