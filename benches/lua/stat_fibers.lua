-- DIR N: file_size of DIR/f1 .. DIR/fN from 4 fibers with the asynchronous
-- filesystem module, while a 5th fiber ticks time.sleep(0.001) and counts
-- its ticks. Prints the elapsed time of the stats, the ticks seen meanwhile
-- and the sum of the sizes (the harness checks it). If the stats blocked the
-- actor's thread, the ticker would not tick until they were all done.
local filesystem = require 'filesystem'
local time = require 'time'
local args = require('system').arguments
local dir = filesystem.path.new(args[3])
local n = tonumber(args[4])
local FIBERS = 4

local paths = {}
for i = 1, n do paths[i] = dir / ('f' .. i) end

local now, sleep = time.steady_clock.now, time.sleep
local done, ticks = false, 0
local ticker = spawn(function()
  while not done do
    sleep(0.001)
    ticks = ticks + 1
  end
end)

local sums = {}
local t0 = now()
local workers = {}
for w = 1, FIBERS do
  workers[w] = spawn(function()
    local file_size, sum = filesystem.file_size, 0
    for i = w, n, FIBERS do sum = sum + file_size(paths[i]) end
    sums[w] = sum
  end)
end
for w = 1, FIBERS do workers[w]:join() end
local elapsed = now() - t0
local ticks_during = ticks
done = true
ticker:join()

local total = 0
for w = 1, FIBERS do total = total + sums[w] end
print('elapsed_s', elapsed)
print('ticks', ticks_during)
print('size_sum', total)
