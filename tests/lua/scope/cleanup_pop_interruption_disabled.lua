-- a popped handler runs with interruption disabled
local f
f = spawn(function()
  scope_cleanup_push(function()
    this_fiber.yield()
    print('handler yielded despite the interruption')
  end)
  f:interrupt()
  scope_cleanup_pop()
  this_fiber.yield()
  print('not reached')
end)
f:join()
print('caught:', f.interruption_caught)
