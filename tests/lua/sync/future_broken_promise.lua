-- a promise collected unsatisfied breaks the future
local future_mod = require 'future'
local f
do
  local p
  p, f = future_mod.new()
end
local waiter = spawn(function()
  local ok, e = pcall(f.get, f)
  print('waiter:', ok, e.code, tostring(e.category), tostring(e))
end)
this_fiber.yield()
collectgarbage()
collectgarbage()
waiter:join()
local ok, e = pcall(f.get, f)
print('later get:', ok, tostring(e))
