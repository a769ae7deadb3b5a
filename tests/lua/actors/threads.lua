-- actors on other threads (inherit_context = false): messages, rendezvous
-- sends and replies cross threads; outputs are ordered by the messages
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  print('worker ' .. m.id .. ': started')
  m.back:send({ id = m.id, sum = m.a + m.b })
  local stop = inbox:receive()
  print('worker ' .. m.id .. ': ' .. stop)
  m.back:send(m.id)
  return
end
local workers = {}
for id = 1, 3 do
  local w = spawn_vm({ module = '.', inherit_context = false })
  workers[id] = w
  w:send({ id = id, a = id, b = 10, back = inbox })
  local r = inbox:receive()
  print('main: reply from', r.id, r.sum)
end
for id = 1, 3 do
  workers[id]:send('stop')
  print('main: stopped', inbox:receive())
end
-- ping-pong across threads
local echo = spawn_vm({ module = '/workers/echo', inherit_context = false })
echo:send(inbox)
local n = 0
for i = 1, 1000 do
  echo:send(i)
  n = n + inbox:receive()
end
print('ping-pong sum', n)
echo:close()
print(pcall(spawn_context_threads, 2), pcall(spawn_context_threads, 0))
print(pcall(spawn_context_threads, 'x'))
