-- A fiber that only yields does not keep a sandbox's messages out: the
-- ring that reads them is turned between its batches.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/echo', sandbox = {} }
local done = false
spawn(function()
  while not done do this_fiber.yield() end
end)
for i = 1, 50 do
  ch:send{ text = 'y', n = i, reply = inbox }
  assert(inbox:receive().n == i + 1)
end
done = true
print('50 replies while a fiber yields')
