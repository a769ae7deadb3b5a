-- is_main: true in the main fiber and module fibers, false in spawned ones
print('main', this_fiber.is_main)
spawn(function() print('spawned', this_fiber.is_main) end):join()
local m = require '/fixtures/is_main_mod'
print('module', m.was_main)
