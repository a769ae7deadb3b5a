-- assigning fields of this_fiber raises EPERM
local generic_error = require 'generic_error'
local ok, e = pcall(function() this_fiber.yield = nil end)
print(ok, e == generic_error.EPERM, tostring(e.category), tostring(e))
ok, e = pcall(function() this_fiber.foo = 1 end)
print(ok, e == generic_error.EPERM)
print(type(this_fiber.yield))
