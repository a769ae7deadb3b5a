-- an interrupted fiber that has not started runs until its first
-- interruption point
local f = spawn(function()
  print('started anyway')
  local x = 0
  for i = 1, 3 do x = x + i end
  print('computed', x)
  this_fiber.yield()
  print('not reached')
end)
f:interrupt()
f:join()
print('caught:', f.interruption_caught)
