-- A round trip: the spawner sends its inbox in the message; the sandboxed
-- actor's send on it arrives in the spawner's inbox (one frame each way).
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/echo', sandbox = {}, monitor = true }
for i = 1, 3 do
  ch:send{ text = 'ping ' .. i, n = i, reply = inbox }
  local r = inbox:receive()
  print(r.echo, r.n, r.reply_is)
end
-- A channel to a sandbox is not an in-process address: it cannot be sent
-- to a sandbox (in-process actors' channels can: routes.lua).
print('sandbox channel:', pcall(ch.send, ch, ch))
ch:close()
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
