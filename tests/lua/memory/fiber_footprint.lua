-- what one fiber costs, counted by the Lua heap (collectgarbage('count')),
-- with generous bounds: a queued fiber with its own closure (record,
-- handle, closure) stays under 300 bytes; a fiber suspended on a mutex
-- (plus its own coroutine and queue links) under 1100 bytes, one in
-- time.sleep under 1000 bytes
local time = require 'time'
local mutex = require 'mutex'
local N = 20000
local function per_fiber(setup)
  for _ = 1, 3 do collectgarbage() end
  local base = collectgarbage('count')
  local handles = {}
  setup(handles)
  for _ = 1, 3 do collectgarbage() end
  local bytes = (collectgarbage('count') - base) * 1024 / N
  return bytes, handles
end

local queued = per_fiber(function(hs)
  for i = 1, N do hs[i] = spawn(function() return i end) end
end)
print('queued fiber under 300 bytes:', queued < 300)
this_fiber.yield()

local m = mutex.new()
m:lock()
local blocked, hs = per_fiber(function(hs)
  for i = 1, N do hs[i] = spawn(function() m:lock() m:unlock() end) end
  this_fiber.yield()
end)
print('fiber blocked on a mutex under 1100 bytes:', blocked < 1100)
m:unlock()
for i = 1, N do hs[i]:join() end
hs = nil

local sleeping, hs2 = per_fiber(function(hs)
  for i = 1, N do hs[i] = spawn(function() time.sleep(0.2) end) end
  this_fiber.yield()
end)
print('fiber in time.sleep under 1000 bytes:', sleeping < 1000)
for i = 1, N do hs2[i]:join() end
