-- scope() is not an interruption point; its handlers run with interruption
-- disabled
local f
f = spawn(function()
  f:interrupt()
  scope(function()
    print('scope body runs')
    scope_cleanup_push(function()
      this_fiber.yield()  -- suspends fine: interruption is disabled here
      print('handler yielded')
    end)
  end)
  print('after scope')
  this_fiber.yield()
end)
f:join()
print('caught:', f.interruption_caught)
