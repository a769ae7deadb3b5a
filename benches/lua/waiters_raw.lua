-- Reference for the many-waiters benchmark: N plain LuaJIT coroutines, each
-- suspended once, resumed in order from an array (the least a scheduler can
-- do to wake N waiters). args via ARGS global: MODE N (MODE is ignored).
local n = tonumber(ARGS[2])
local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
local function body() yield() end
local cos = {}
for i = 1, n do
  cos[i] = create(body)
  resume(cos[i])
end
local t0 = now_ns()
for i = 1, n do resume(cos[i]) end
print('ns_per_op', (now_ns() - t0) / n)
