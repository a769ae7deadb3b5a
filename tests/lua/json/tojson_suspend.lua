-- __tojson runs inside a Rust call: suspending there is refused up front with
-- the C-call boundary error
-- (before the fiber registers a wait), and the scheduler stays intact
local json = require 'json'
local time = require 'time'
local function custom(f) return setmetatable({}, { __tojson = f }) end
local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code) end
end
try(custom(function(_, s) this_fiber.yield() s.writer:value(1) end))
try(custom(function(_, s) time.sleep(0.01) s.writer:value(1) end))
try({ custom(function(_, s) spawn(print, 'spawning is fine'):detach() s.writer:value(2) end) })
local f = spawn(function() time.sleep(0.01) return 'other fiber' end)
print(f:join())
this_fiber.yield()
time.sleep(0.001)
print('scheduler intact')
