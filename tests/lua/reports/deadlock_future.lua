-- fibers blocked on a future whose promise is alive are reported
local future_mod = require 'future'
local p, f = future_mod.new()
keep_promise = p
spawn(function() f:get() end)
local m = require('mutex').new()
m:lock()
spawn(function() m:lock() end)
print('main ends')
