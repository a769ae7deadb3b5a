-- Reference: plain LuaJIT coroutines, create + resume. args via ARGS global.
local mode, n = ARGS[1], tonumber(ARGS[2])
local create, resume = coroutine.create, coroutine.resume
local function body() end
local t0 = now_ns()
if mode == 'seq' then
  for _ = 1, n do resume(create(body)) end
elseif mode == 'closures' then
  local cos = {}
  for i = 1, n do cos[i] = create(function() return i end) end
  for i = 1, n do resume(cos[i]) end
else
  local cos = {}
  for i = 1, n do cos[i] = create(body) end
  for i = 1, n do resume(cos[i]) end
end
print('ns_per_op', (now_ns() - t0) / n)
