-- A sandbox's end reaches its spawner's monitor when the process has other
-- threads (the spawner's thread then sleeps in poll(2) on its ring: the
-- cancel of the relay's read, queued after a turn, must still be
-- submitted; before it was, this hung).
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local main = inbox:receive()
  main:send('worker up')
  pcall(inbox.receive, inbox)
  return
end
local w = spawn_vm{ module = '.', inherit_context = false }
w:send(inbox)
print(inbox:receive())
local ch = spawn_vm{ module = '/fixtures/echo', sandbox = {}, monitor = true }
ch:send{ text = 'hi', n = 0, reply = inbox }
print(inbox:receive().echo)
ch:close()
local n = inbox:receive()
print(n.monitor, n.reason, n.code)
w:send('bye')
