-- runtime functions do not leak the runtime's globals
print(getfenv(spawn), getfenv(print), getfenv(require), getfenv(pcall))
print(getfenv(0) == _G, getfenv(1) == _G, getfenv() == _G)
print(getfenv(this_fiber.yield))
local ok, e = pcall(setfenv, spawn, {})
print(ok, tostring(e))
local function f() return 1 end
setfenv(f, { x = 1 })
print(getfenv(f).x)
