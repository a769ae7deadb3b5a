-- many senders: each worker sends 3 messages; main counts them all, then
-- gets no_senders once every worker ended and its handles were dropped
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  for i = 1, 3 do m.back:send({ id = m.id, i = i }) end
  return
end
local N = 10
for id = 1, N do
  local w = spawn_vm('.')
  w:send({ back = inbox, id = id })
end
local seen, total = {}, 0
for _ = 1, 3 * N do
  local m = inbox:receive()
  seen[m.id] = (seen[m.id] or 0) + 1
  total = total + 1
end
local ok = true
for id = 1, N do ok = ok and seen[id] == 3 end
print('received', total, 'each worker 3 times:', ok)
collectgarbage()
print(pcall(inbox.receive, inbox))
