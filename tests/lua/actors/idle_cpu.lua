-- After messages crossed threads, idle actors burn no CPU: a thread spins
-- only briefly (bounded) after traffic before it sleeps. The process's CPU
-- time (os.clock, all threads) over 1 s with every actor idle stays near
-- zero; a thread left spinning would show about 1 s per thread.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local m = inbox:receive()
    back:send(m)
    if m == 'stop' then return end
  end
end
local time = require 'time'
local workers = {}
for id = 1, 2 do
  local w = spawn_vm({ module = '.', inherit_context = false })
  w:send(inbox)
  workers[id] = w
end
for i = 1, 200 do
  for id = 1, 2 do
    workers[id]:send(i)
    assert(inbox:receive() == i)
  end
end
print('traffic done')
local cpu0 = os.clock()
time.sleep(1) -- every actor idle: the worker threads wait in receive
local cpu = os.clock() - cpu0
print('idle CPU time below 0.1 s:', cpu < 0.1, cpu < 0.1 and '' or cpu)
for id = 1, 2 do
  workers[id]:send('stop')
  print(inbox:receive())
end
