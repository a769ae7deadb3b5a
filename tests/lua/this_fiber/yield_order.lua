-- yield re-queues the current fiber at the tail of the run queue
spawn(function()
  for i = 1, 3 do print('a', i) this_fiber.yield() end
end)
spawn(function()
  for i = 1, 3 do print('b', i) this_fiber.yield() end
end)
for i = 1, 3 do print('main', i) this_fiber.yield() end
