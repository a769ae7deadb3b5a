-- a failed fiber's error value is re-raised in the joiner, as is
local t = {}
local f = spawn(function() error(t) end)
local ok, e = pcall(function() return f:join() end)
print(ok, rawequal(e, t))
print('joinable:', f.joinable)
print('caught:', f.interruption_caught)

local g = spawn(function() error('plain', 0) end)
this_fiber.yield()
print(pcall(g.join, g))
print('joinable:', g.joinable)
