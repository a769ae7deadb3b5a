-- unknown this_fiber keys raise bad_index
local ok, e = pcall(function() return this_fiber.nope end)
print(ok, e.code, tostring(e.category), tostring(e), e.index)
print(getmetatable(this_fiber))
