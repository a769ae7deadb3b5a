-- set_value(nil) is allowed
local promise, future = require('future').new()
spawn(function() promise:set_value() end)
print(select('#', future:get()), future:get())
