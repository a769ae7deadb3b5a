-- interrupt cancels a suspended operation; join reports interruption_caught
local time = require 'time'
local f = spawn(function()
  print('sleeping')
  time.sleep(1000)
  print('not reached')
end)
this_fiber.yield()
f:interrupt()
print('join returns', select('#', f:join()), 'values')
print('interruption_caught:', f.interruption_caught)
