-- A producer/consumer pair with a mutex and a condition variable, and a
-- promise/future pair to hand back a result.
local mutex = require 'mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'

local m, cv = mutex.new(), condition_variable.new()
local queue = {}
local promise, result = future.new()

spawn(function()
    local sum = 0
    for _ = 1, 3 do
        m:lock()
        while #queue == 0 do cv:wait(m) end
        sum = sum + table.remove(queue, 1)
        m:unlock()
    end
    promise:set_value(sum)
end)

for i = 1, 3 do
    m:lock()
    queue[#queue + 1] = i * 10
    cv:notify_one()
    m:unlock()
    this_fiber.yield()
end
print('sum', result:get())
