-- steady_timer: expires_after + wait; cancel counts; aborted wait
local time = require 'time'
local t = time.steady_timer.new()
print(getmetatable(t))
print('expires_after (nothing pending):', t:expires_after(0.001))
t:wait()
print('waited')
print('cancel (nothing pending):', t:cancel())
t:expires_after(60)
local waiters = {}
for i = 1, 2 do
  waiters[i] = spawn(function()
    local ok, e = pcall(t.wait, t)
    print('waiter', i, ok, tostring(e.category), tostring(e))
  end)
end
this_fiber.yield()
print('cancel:', t:cancel())
waiters[1]:join()
waiters[2]:join()
