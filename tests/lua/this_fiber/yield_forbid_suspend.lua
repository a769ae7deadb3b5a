-- yield checks forbid-suspend before the interruption flag
local f = spawn(function()
  this_fiber.forbid_suspend()
  local ok, e = pcall(function() this_fiber.yield() end)
  print(ok, e.code, tostring(e.category), tostring(e))
  this_fiber.allow_suspend()
end)
f:join()
-- forbid-suspend is checked before a pending interruption
-- (scope() is not an interruption point, so yield is the first one)
local g
g = spawn(function()
  g:interrupt()
  this_fiber.forbid_suspend()
  scope(function() this_fiber.yield() end)
end)
local ok, e = pcall(g.join, g)
print('g:', ok, tostring(e))
