-- wrap returns values and re-raises errors (level 0: message unchanged)
local gen = coroutine.wrap(function()
  for i = 1, 2 do coroutine.yield(i) end
  error('wrapped failure', 0)
end)
print(gen(), gen())
print(pcall(gen))
local t = {}
local g2 = coroutine.wrap(function() error(t) end)
local ok, e = pcall(g2)
print(ok, rawequal(e, t))
-- suspension inside wrap works too
local w = coroutine.wrap(function() this_fiber.yield() return 'after yield' end)
print(w())
