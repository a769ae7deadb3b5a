-- join on a running fiber suspends until it finishes
local f = spawn(function()
  print('child start')
  this_fiber.yield()
  print('child end')
  return 'x', 'y'
end)
print('joining')
print('joined:', f:join())
print('interruption_caught:', f.interruption_caught)
