-- Several completions per ring turn, an opened fd among them (rt.turn
-- returns the first one and buffers the rest): modules load correctly while
-- other fibers keep NOPs completing in every turn, and those fibers keep
-- taking strict turns.
local time = require 'time'
local spins = { 0, 0, 0 }
local stop = false
local fibers = {}
for i = 1, 3 do
  fibers[i] = spawn(function()
    while not stop do
      time.sleep(0)
      spins[i] = spins[i] + 1
    end
  end)
end
this_fiber.yield()
for _ = 1, 3 do
  print(require('/fixtures/simple').get(), require('/fixtures/sibling').name)
end
stop = true
for i = 1, 3 do fibers[i]:join() end
print('fibers spun:', spins[1] > 0, spins[1] - spins[3] <= 1, spins[3] <= spins[1])
