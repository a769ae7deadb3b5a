-- detach makes the handle non-joinable; a second detach is EINVAL
local f = spawn(function() print('detached fiber runs') end)
print(f.joinable)
f:detach()
print(f.joinable)
local ok, e = pcall(f.detach, f)
print(ok, tostring(e.category), tostring(e), e.arg)
local ok2, e2 = pcall(function() return f.interruption_caught end)
print(ok2, tostring(e2))
this_fiber.yield()

local g = spawn(function() end)
g:join()
print(pcall(g.detach, g))
