-- mutexes, recursive mutexes, condition variables, futures and timers that
-- had waiters are collected once dropped: nothing keeps them for the
-- deadlock report after their waiters left, and neither does their private
-- state (LuaJIT's weak keys are not ephemerons: a state referring to its
-- object would keep it for ever)
local time = require 'time'
local mutex = require 'mutex'
local recursive_mutex = require 'recursive_mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'

local N = 20000
local alive = setmetatable({}, { __mode = 'k' })
local function count()
  collectgarbage()
  collectgarbage()
  local n = 0
  for _ in pairs(alive) do n = n + 1 end
  return n
end

;(function() for _ = 1, N do
  local m = mutex.new()
  m:lock()
  spawn(function() m:lock() m:unlock() end)
  this_fiber.yield()
  m:unlock()
  alive[m] = true
end end)()
this_fiber.yield()
print('mutexes alive:', count())

;(function() for _ = 1, N do
  local m = recursive_mutex.new()
  m:lock()
  spawn(function() m:lock() m:unlock() end)
  this_fiber.yield()
  m:unlock()
  alive[m] = true
end end)()
this_fiber.yield()
print('recursive mutexes alive:', count())

;(function() for _ = 1, N do
  local m, cv = mutex.new(), condition_variable.new()
  spawn(function() m:lock() cv:wait(m) m:unlock() end)
  this_fiber.yield()
  cv:notify_one()
  alive[cv] = true
end end)()
this_fiber.yield()
print('condition variables alive:', count())

;(function() for _ = 1, N do
  local p, fu = future.new()
  spawn(function() fu:get() end)
  this_fiber.yield()
  p:set_value(1)
  alive[fu] = true
end end)()
this_fiber.yield()
print('futures alive:', count())

;(function() for i = 1, N / 10 do
  local t = time.steady_timer.new()
  t:expires_after(i % 2 == 0 and 0 or 60)
  local f = spawn(function() pcall(t.wait, t) end)
  this_fiber.yield()
  t:cancel()
  f:join()
  alive[t] = true
end end)()
print('timers alive:', count())

-- never waited on; a future even while its promise is still held
local promises = {}
;(function() for i = 1, N do
  alive[mutex.new()] = true
  alive[recursive_mutex.new()] = true
  alive[condition_variable.new()] = true
  local p, fu = future.new()
  promises[i] = p
  alive[fu] = true
  if i % 10 == 0 then alive[time.steady_timer.new()] = true end
end end)()
print('unused objects alive:', count(), 'promises held:', #promises)
