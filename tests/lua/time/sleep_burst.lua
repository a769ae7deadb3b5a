-- 2,000 timers due at once: their completions exceed the ring's completion
-- queue (128 entries) and wait in the kernel's overflow list; none is lost
-- and each fiber wakes once.
local time = require 'time'
local N = 2000
local woke, fibers = {}, {}
for i = 1, N do
  fibers[i] = spawn(function()
    time.sleep(0.05)
    woke[i] = (woke[i] or 0) + 1
  end)
end
for i = 1, N do fibers[i]:join() end
local once = 0
for i = 1, N do if woke[i] == 1 then once = once + 1 end end
print('woke once', once, 'of', N)
