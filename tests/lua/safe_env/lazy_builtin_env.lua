-- The code of some builtin modules (time, mutex, future, system, ...) loads
-- when a module first requires them: it runs with the runtime's globals,
-- never with the globals of the module that happened to require it first.
setmetatable, type, error, math, table, rawget, pairs, tostring = nil, nil, nil, nil, nil, nil, nil, nil
local time = require 'time'
local mutex = require 'mutex'
local future = require 'future'
local system = require 'system'
time.sleep(0.001)
local m = mutex.new()
m:lock()
m:unlock()
local p, f = future.new()
p:set_value(42)
print(f:get(), time.steady_clock.now() ~= nil, system.arguments[2] ~= nil)
