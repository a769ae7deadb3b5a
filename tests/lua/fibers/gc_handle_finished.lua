-- collecting the handle of a failed fiber = detach: panic printed at
-- collection time
collectgarbage('stop')
spawn(function() error('collected', 0) end)
this_fiber.yield()
print('about to collect')
collectgarbage('collect')
print('after collect')
