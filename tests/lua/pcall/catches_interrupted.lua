-- an interruption raised inside pcall is caught like any error
local time = require 'time'
local f = spawn(function()
  local ok, e = pcall(time.sleep, 1000)
  print(ok, tostring(e))
  -- the flag stays set: the next interruption point raises again
  pcall(function() print('not run') end)
  print('not reached')
end)
this_fiber.yield()
f:interrupt()
f:join()
print('caught:', f.interruption_caught)
