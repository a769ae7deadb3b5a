-- this_fiber.yield refused inside a C callback raises the runtime's
-- message with its hint (not LuaJIT's bare one) wherever it is caught,
-- also from hot, JIT-compiled code, and leaves the fiber queued nowhere:
-- a user coroutine can still suspend the fiber with it afterwards
local yield = this_fiber.yield
local function in_comparator() table.sort({ 3, 2, 1 }, function(a, b) yield() return a < b end) end
local _, expected = pcall(in_comparator)
print(expected)
print(pcall(function() ('x'):gsub('x', function() yield() end) end))
print(coroutine.resume(coroutine.create(in_comparator)))
local _, e = xpcall(in_comparator, function(m) return 'handler saw: ' .. m end)
print(e)
local other_messages = 0
for _ = 1, 2000 do
  local _, m = pcall(in_comparator)
  if m ~= expected then other_messages = other_messages + 1 end
  yield() -- also hot
end
print('other messages in a hot loop:', other_messages)
local other = spawn(function() print('the other fiber ran') end)
print(coroutine.wrap(function() yield() return 'a coroutine yielded the fiber' end)())
other:join()
spawn(in_comparator):detach()
