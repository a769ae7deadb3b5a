-- Greets, sleeps on the ring, and joins a fiber.
local time = require 'time'
local system = require 'system'

print('hello from luring; arguments:', table.concat(system.arguments, ' ', 3))

local f = spawn(function(name)
    time.sleep(0.01)
    return 'hi ' .. name
end, 'fiber')
print(f:join())
