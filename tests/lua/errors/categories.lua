-- error tables: category names, messages, shared metatable
local ge = require 'generic_error'
local time = require 'time'
local _, core = pcall(function() return this_fiber.nope end)
local _, generic = pcall(time.sleep, -1)
local t = time.steady_timer.new()
t:expires_after(60)
local f = spawn(function() local _, e = pcall(t.wait, t) return e end)
this_fiber.yield()
t:cancel()
local system = f:join()
for _, e in ipairs({ core, generic, system, ge.EEXIST }) do
  print(tostring(e.category), e.code, tostring(e), getmetatable(e))
end
print(getmetatable(core.category))
print(rawequal(getmetatable(core), getmetatable(system)))
-- every category's message method, through the metatable they share
print(core.category:message(8), system.category:message(125), generic.category.message(generic.category, 17))
print(rawequal(core.category.message, system.category.message))
-- called on something that is not a category: a clear error, nothing else
print(pcall(core.category.message, {}, 8))
print(pcall(core.category.message, nil, 8))
print(tostring(core.category), tostring(system.category), tostring(ge.EEXIST.category))
