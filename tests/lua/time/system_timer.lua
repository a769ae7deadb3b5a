-- system_timer works with system_clock time points
local time = require 'time'
local t = time.system_timer.new()
print(getmetatable(t))
local at = time.system_clock.now() + 0.001
print(t:expires_at(at))
print(t.expiry == at)
t:wait()
print('waited')
t:expires_after(60)
local f = spawn(function() print(pcall(t.wait, t)) end)
this_fiber.yield()
print('cancelled', t:cancel())
f:join()
local ok, e = pcall(t.expires_at, t, time.steady_clock.now())
print('steady time point:', ok, tostring(e))
