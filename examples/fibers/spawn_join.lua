-- Fibers run concurrently on one thread; join returns what the fiber returned
-- and re-raises what it raised.
local time = require 'time'

local function worker(name, delay)
    time.sleep(delay)
    return name .. ' done'
end

local a = spawn(worker, 'a', 0.02)
local b = spawn(worker, 'b', 0.01)
print(a:join(), b:join())

local bad = spawn(function() error('no luck') end)
local ok, err = pcall(bad.join, bad)
print(ok, err)
