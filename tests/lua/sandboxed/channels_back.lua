-- A sandboxed actor sends back, inside its messages, the channel it was
-- given (its spawner's inbox): it arrives as a channel to that inbox,
-- whatever its place in the message. Its own inbox cannot be sent
-- (ENOTSUP): no channel leads into a sandbox but its spawner's.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/returns_channels', sandbox = {}, monitor = true }
ch:send{ reply = inbox }
-- (a send is a rendezvous: another fiber sends through the channel)
local function through(channel, text)
  local f = spawn(function() channel:send(text) end)
  print(inbox:receive())
  f:join()
end
local r = inbox:receive()
print('n', r.n, 'back is a', getmetatable(r.back))
through(r.back, 'through the returned channel')
ch:send('next')
r = inbox:receive()
print('list', r.list[2], getmetatable(r.list[1]), getmetatable(r.list[3].deeper))
through(r.list[3].deeper, 'through the nested one')
ch:send('next')
print('own inbox:', inbox:receive().own_inbox)
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
