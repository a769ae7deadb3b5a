-- joining a non-joinable handle raises generic EINVAL with arg=1
local function show(ok, e)
  print(ok, e.code == require('generic_error').EINVAL.code, tostring(e.category), tostring(e), e.arg)
end
local f = spawn(function() end)
f:join()
show(pcall(f.join, f))        -- already joined

local g = spawn(function() end)
g:detach()
show(pcall(g.join, g))        -- detached

-- a join already in progress
local h = spawn(function() this_fiber.yield() this_fiber.yield() end)
local j = spawn(function() h:join() print('first joiner done') end)
this_fiber.yield()
print('joinable while joined:', h.joinable)
show(pcall(h.join, h))
j:join()
