-- forbid_suspend/allow_suspend is a counter
local function try(what, fn)
  local ok, e = pcall(fn)
  print(what, ok, ok or tostring(e))
end
this_fiber.forbid_suspend()
this_fiber.forbid_suspend()
this_fiber.allow_suspend()
try('yield at 1', this_fiber.yield)
try('sleep at 1', function() require('time').sleep(0) end)
this_fiber.allow_suspend()
try('yield at 0', this_fiber.yield)
local ok, e = pcall(this_fiber.allow_suspend)
print(ok, e.code, tostring(e.category), tostring(e))
-- a fiber may finish with the counter > 0 silently
local f = spawn(function() this_fiber.forbid_suspend() return 'done' end)
print(f:join())
