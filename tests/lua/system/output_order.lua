-- exit: 3
-- print, write_some from several fibers and error reports reach the merged
-- streams in the order they were issued; output queued right before a
-- forced exit is written too
local system = require 'system'
print('p1')
local f = spawn(function()
  system.err:write_some('fiber: err write_some\n')
  print('fiber: after its write')
end)
print('p2 (issued before the fiber ran)')
f:join()
spawn(function() error('boom') end):detach()
this_fiber.yield()
print('after the report')
local n = system.out:write_some('out write_some\n')
print('wrote', n)
for i = 1, 3 do print('tail', i) end
system.exit(3, { force = 2 })
