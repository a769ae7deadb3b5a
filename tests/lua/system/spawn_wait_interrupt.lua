-- wait() is an interruption point; an interrupted wait loses nothing
local system = require 'system'
local p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
local f = spawn(function()
  local ok, e = pcall(p.wait, p)
  print('interrupted wait:', ok, tostring(e))
end)
this_fiber.yield()
f:interrupt()
f:join()
-- two fibers wait for the same child; both see it end
local seen = {}
local waiters = {}
for i = 1, 2 do
  waiters[i] = spawn(function()
    p:wait()
    seen[i] = p.exit_code .. ' ' .. p.exit_signal
  end)
end
this_fiber.yield()
p:kill(system.signal.SIGTERM)
waiters[1]:join()
waiters[2]:join()
print('waiters:', seen[1], seen[2])

