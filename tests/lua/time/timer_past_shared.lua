-- waits on a timer whose expiry has passed (a NOP, no kernel timer) also
-- share one op: they return together, after the fibers that were ready
-- meanwhile ran; cancel() and a new expiry abort them like any wait
local time = require 'time'
local t = time.steady_timer.new()
t:expires_at(time.steady_clock.now():sub(1))
local log = {}
local hs = {}
for i = 1, 3 do
  hs[i] = spawn(function()
    local ok, e = pcall(t.wait, t)
    log[#log + 1] = i .. ':' .. (ok and 'expired' or tostring(e))
  end)
end
spawn(function() log[#log + 1] = 'other fiber' end)
for i = 1, 3 do hs[i]:join() end
print(table.concat(log, ' '))

log = {}
for i = 1, 3 do
  hs[i] = spawn(function()
    local ok, e = pcall(t.wait, t)
    log[#log + 1] = i .. ':' .. (ok and 'expired' or tostring(e))
  end)
end
this_fiber.yield() -- all three wait on one NOP now
print('cancel:', t:cancel())
for i = 1, 3 do hs[i]:join() end
print(table.concat(log, ' '))

log = {}
for i = 1, 2 do
  hs[i] = spawn(function()
    local ok, e = pcall(t.wait, t)
    log[#log + 1] = i .. ':' .. (ok and 'expired' or tostring(e))
  end)
end
this_fiber.yield()
print('expires_after:', t:expires_after(0))
for i = 1, 2 do hs[i]:join() end
t:wait()
print(table.concat(log, ' '), 'then waited on the new (past) expiry')
