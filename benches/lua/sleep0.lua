-- N time.sleep(0) calls: each is an IORING_OP_NOP round trip (no timer).
local time = require 'time'
local n = tonumber(require('system').arguments[3])
local now = time.steady_clock.now
local sleep = time.sleep
local t0 = now()
for _ = 1, n do sleep(0) end
print('ns_per_op', (now() - t0) / n * 1e9)
