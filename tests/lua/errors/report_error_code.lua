-- panic report message: an error code table prints its category message
local ge = require 'generic_error'
spawn(function() error(ge.EINVAL) end):detach()
spawn(function() this_fiber.forbid_suspend() this_fiber.yield() end):detach()
this_fiber.yield()
print('end')
