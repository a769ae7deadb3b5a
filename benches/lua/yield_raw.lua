-- Reference: N coroutine.yield() calls, each resumed by the main thread.
local n = tonumber(ARGS[1])
local yield, resume = coroutine.yield, coroutine.resume
local co = coroutine.create(function() for _ = 1, n do yield() end end)
local t0 = now_ns()
for _ = 1, n do resume(co) end
print('ns_per_op', (now_ns() - t0) / n)
