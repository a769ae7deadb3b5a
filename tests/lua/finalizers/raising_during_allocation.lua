-- Regression (fixed in LuaJIT by the 2025 finalizer rework): a __gc that
-- raises used to corrupt the Lua stack of the code the collection
-- interrupted, and a later call crashed. Raising finalizers run here in the
-- middle of allocation-heavy code in several fibers: each error is reported
-- once on stderr and the interrupted code goes on undisturbed.
-- (tests/vm_limits.rs runs the same with thousands of finalizers.)
local function raising_proxy()
  local u = newproxy(true)
  getmetatable(u).__gc = function() error('boom', 0) end
  return u
end
local N = 25
local function churn(tag)
  local sum = 0
  for i = 1, N do
    raising_proxy()
    for _ = 1, 200 do
      local t = { tostring(i), { i }, string.rep('x', i % 64) }
      sum = sum + #t[1] + t[2][1] + #t[3]
    end
    this_fiber.yield()
  end
  return tag, sum
end
local fibers = {}
for k = 1, 4 do fibers[k] = spawn(churn, k) end
local results = {}
for k = 1, 4 do results[k] = { fibers[k]:join() } end
collectgarbage()
collectgarbage()
for k = 1, 4 do print(unpack(results[k])) end
