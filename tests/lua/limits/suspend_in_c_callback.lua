-- A callback called from C (a sort comparator, a gsub replacement, a
-- __tostring called by string.format) cannot suspend the fiber: every
-- suspending call fails there before it registers anything, and the
-- scheduler stays intact afterwards.
local time = require 'time'
local mutex = require 'mutex'
local m = mutex.new()
m:lock()
local other = spawn(function() time.sleep(0.001) end)
local attempts = {
  sleep = function() time.sleep(0) end,
  yield = function() this_fiber.yield() end,
  lock = function() m:lock() end,
  join = function() other:join() end,
}
for _, name in ipairs({ 'sleep', 'yield', 'lock', 'join' }) do
  local try = attempts[name]
  print(name, 'sort', pcall(table.sort, { 3, 1, 2 }, function(a, b) try() return a < b end))
  print(name, 'gsub', pcall(string.gsub, 'ab', '.', function() try() end))
  local obj = setmetatable({}, { __tostring = function() try() return 'x' end })
  print(name, 'format', pcall(string.format, '%s', obj))
end
time.sleep(0.001)
this_fiber.yield()
other:join()
m:unlock()
print('scheduler intact')
