-- luring side of the many-waiters benchmark. args: MODE N
-- mutex: N fibers block on one locked mutex; the main fiber unlocks it and
--        each waiter in turn takes and releases it.
-- timer: N fibers wait on one steady_timer that expires 1 s after they
--        start waiting; the kernel completes all N waits at its expiry.
-- Times from the release (the unlock; the expiry) until every waiter has
-- finished, per waiter.
local time = require 'time'
local system = require 'system'
local mode, n = system.arguments[3], tonumber(system.arguments[4])
local now = time.steady_clock.now
local handles = {}
local release
if mode == 'mutex' then
  local m = require('mutex').new()
  m:lock()
  for i = 1, n do handles[i] = spawn(function() m:lock() m:unlock() end) end
  release = function() m:unlock() end
else
  local t = time.steady_timer.new()
  t:expires_after(1)
  for i = 1, n do handles[i] = spawn(function() t:wait() end) end
  release = function()
    local expiry = t.expiry
    assert(now() < expiry, 'the waiters took longer than 1 s to start waiting')
    return expiry
  end
end
this_fiber.yield() -- every waiter runs once and blocks
local t0 = now()
t0 = release() or t0
for i = 1, n do handles[i]:join() end
print('ns_per_op', (now() - t0) / n * 1e9)
