-- a suspension point reached inside a C call (a table.sort comparator, a
-- gsub callback) cannot yield: it is refused before anything is registered
local time = require 'time'
local function try(f, ...)
    local ok, r = pcall(f, ...)
    print(ok, tostring(r), type(r) == 'table' and r.code or '')
end
try(table.sort, { 3, 1, 2 }, function(a, b) this_fiber.yield() return a < b end)
try(table.sort, { 3, 1, 2 }, function(a, b) time.sleep(0.001) return a < b end)
try(string.gsub, 'abc', '%w', function() time.sleep(0.001) end)
-- the same calls are fine in plain Lua code, and nothing was left behind
local waiter = spawn(function() time.sleep(0.005) return 'woke' end)
this_fiber.yield()
print(waiter:join())
