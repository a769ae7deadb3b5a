-- joining yourself raises EDEADLK (generic category)
local generic_error = require 'generic_error'
local f
f = spawn(function()
  local ok, e = pcall(function() f:join() end)
  print(ok, tostring(e.category), e == generic_error.EDEADLK, tostring(e))
end)
this_fiber.yield() -- let f run before anyone joins it
f:join()
