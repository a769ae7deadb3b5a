-- many fibers waiting on one timer share its expiry: they wake together,
-- in wait order; interrupted ones leave at once and the rest still wake at
-- the expiry; cancel() and a new expiry abort every remaining waiter
local time = require 'time'
local t = time.steady_timer.new()

local function waiters(n, log)
  local hs = {}
  for i = 1, n do
    hs[i] = spawn(function()
      local ok, e = pcall(t.wait, t)
      log[#log + 1] = i .. ':' .. (ok and 'expired' or tostring(e))
    end)
  end
  this_fiber.yield() -- every waiter is waiting now
  return hs
end
local function join(hs) for i = 1, #hs do hs[i]:join() end end

-- interrupt some of 8 waiters; the others wake at the expiry, FIFO
t:expires_after(0.05)
local log = {}
local hs = waiters(8, log)
hs[2]:interrupt()
hs[5]:interrupt()
hs[8]:interrupt()
join(hs)
print(table.concat(log, ' '))
print('expired, not early:', time.steady_clock.now() >= t.expiry)
print('cancel after expiry:', t:cancel())

-- cancel() with many waiters aborts each once, in wait order
t:expires_after(3600)
log = {}
hs = waiters(6, log)
hs[3]:interrupt()
print('cancel:', t:cancel(), 'again:', t:cancel())
join(hs)
print(table.concat(log, ' '))

-- a new expiry aborts the waiters of the old one; waits started after it
-- wait for the new expiry
t:expires_after(3600)
log = {}
hs = waiters(3, log)
print('expires_after:', t:expires_after(0.05))
local late = waiters(2, log)
join(hs)
join(late)
print(table.concat(log, ' '))
t:expires_after(3600)
log = {}
hs = waiters(2, log)
print('expires_at:', t:expires_at(time.steady_clock.now():add(0.02)))
join(hs)
print(table.concat(log, ' '))

-- every waiter interrupted: the timer has no waits left, and the next
-- wait arms a new one (and would have to wait 1 h if the old op lingered)
t:expires_after(0.05)
log = {}
hs = waiters(4, log)
for i = 1, 4 do hs[i]:interrupt() end
join(hs)
print(table.concat(log, ' '))
print('cancel with no waiter left:', t:cancel())
t:expires_after(0.02)
t:wait()
print('a new wait after all left: expired')

-- a waiter that disabled interruption stays until the expiry
t:expires_after(0.05)
log = {}
local keeper = spawn(function()
  this_fiber.disable_interruption()
  t:wait()
  log[#log + 1] = 'kept:expired'
  this_fiber.restore_interruption()
end)
hs = waiters(1, log)
keeper:interrupt()
hs[1]:interrupt()
join(hs)
keeper:join()
print(table.concat(log, ' '), 'interruption caught:', keeper.interruption_caught)
