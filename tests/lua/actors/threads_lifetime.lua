-- exit: 3
-- on other threads: a panicking worker does not take the others down, a
-- worker whose peers are gone gets no_senders, system.exit in a worker
-- ends the whole process with its code
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m.role == 'panic' then
    error('thread worker failed')
  elseif m.role == 'exit' then
    m.back:send('exiting')
    require('system').exit(3)
  end
  return
end
local p = spawn_vm({ module = '.', inherit_context = false })
p:send({ role = 'panic', back = inbox })
-- its VM is gone once its inbox is closed: wait for that
while pcall(p.send, p, 'still there?') do end
print('panicked worker gone')
local e = spawn_vm({ module = '.', inherit_context = false })
e:send({ role = 'exit', back = inbox })
print(inbox:receive())
-- the exit ends this VM too, whatever it waits for
require('time').sleep(3600)
print('not reached')
