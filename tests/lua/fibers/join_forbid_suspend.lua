-- join checks forbid-suspend first, even for a finished target
local target = spawn(function() return 'v' end)
this_fiber.yield()
this_fiber.forbid_suspend()
local ok, e = pcall(target.join, target)
print(ok, tostring(e), e.code, tostring(e.category))
this_fiber.allow_suspend()
print(target:join())
