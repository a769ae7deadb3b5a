-- spawn posts: the caller keeps running; new fibers start in FIFO order
spawn(function() print('a') end)
spawn(function() print('b') end)
print('main continues')
spawn(function() print('c') end)
this_fiber.yield()
print('main after yield')
