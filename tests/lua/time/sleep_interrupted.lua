-- an interrupted sleep raises interrupted
local time = require 'time'
local f = spawn(function()
  local ok, e = pcall(time.sleep, 60)
  print(ok, e.code, tostring(e.category), tostring(e))
end)
this_fiber.yield()
f:interrupt()
f:join()
print('caught:', f.interruption_caught)
