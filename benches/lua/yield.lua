-- luring side of the yield benchmark: two fibers take turns; N is the total
-- number of this_fiber.yield() calls (each is a yield plus the resume that
-- comes back to it).
local time = require 'time'
local n = tonumber(require('system').arguments[3])
local now = time.steady_clock.now
local yield = this_fiber.yield
local function body() for _ = 1, n / 2 do yield() end end
local t0 = now()
local a, b = spawn(body), spawn(body)
a:join()
b:join()
print('ns_per_op', (now() - t0) / n * 1e9)
