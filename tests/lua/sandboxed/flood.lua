-- A sandboxed actor that sends as fast as it can: the host reads its next
-- frame only once the previous message was taken, so they all arrive, in
-- order, and never pile up in the host.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/flood', sandbox = {}, monitor = true }
ch:send{ count = 2000, reply = inbox }
local expected, ok = 1, true
while expected <= 2000 do
  local v = inbox:receive()
  if v ~= expected then ok = false print('out of order', v, expected) break end
  expected = expected + 1
end
print('received in order:', ok, expected - 1)
local notice = inbox:receive()
print(notice.reason, notice.code)
