-- an interrupted timer wait raises interrupted, not operation_aborted
local time = require 'time'
local t = time.steady_timer.new()
t:expires_after(60)
local f = spawn(function()
  local ok, e = pcall(t.wait, t)
  print(ok, tostring(e))
end)
this_fiber.yield()
f:interrupt()
f:join()
print('cancel after:', t:cancel())
