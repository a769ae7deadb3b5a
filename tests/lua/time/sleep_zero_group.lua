-- sleep(0) waiters of one batch share one ring turn: they wake in order,
-- after the fibers queued before them; an interrupted waiter leaves the
-- group and the rest still wake; a refused sleep(0) (inside a C callback)
-- leaves nothing registered; user coroutines forward the wait
local time = require 'time'

local log = {}
local fibers = {}
for i = 1, 4 do
  fibers[i] = spawn(function()
    local ok, e = pcall(time.sleep, 0)
    log[#log + 1] = i .. (ok and ':woke' or ':' .. tostring(e))
  end)
end
local late = spawn(function() log[#log + 1] = 'ready fiber' end)
this_fiber.yield() -- the four sleep; `late` ran
fibers[2]:interrupt()
for i = 1, 4 do fibers[i]:join() end
late:join()
print(table.concat(log, ' '))

-- refused inside a C callback, then works normally
local ok, e = pcall(table.sort, { 3, 1, 2 }, function(a, b) time.sleep(0) return a < b end)
print('in sort comparator:', ok, e)
time.sleep(0)
print('sleep(0) after a refused one returned')

-- inside a user coroutine: the whole fiber waits, the coroutine resumes
local co = coroutine.wrap(function()
  time.sleep(0)
  return 'coroutine slept'
end)
print(co())

-- interrupted while alone in its group: the group's NOP then wakes nobody
local m = spawn(function()
  local ok2, e2 = pcall(time.sleep, 0)
  print('interrupted:', ok2, tostring(e2))
end)
this_fiber.yield()
m:interrupt()
m:join()
time.sleep(0)
print('main sleep(0) after an empty group returned')
