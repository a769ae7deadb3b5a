-- process lifetime: a panicking worker does not take others down; an inbox
-- never required closes when its VM's main fiber ends; the last sender
-- going away wakes a receiver with no_senders
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m.role == 'panic' then
    m.back:send('about to panic')
    error('worker failed on purpose')
  elseif m.role == 'orphan' then
    m.back:send('orphan waiting')
    m = nil
    collectgarbage()
    print('orphan:', pcall(inbox.receive, inbox))
  end
  return
end
local p = spawn_vm('.')
p:send({ role = 'panic', back = inbox })
print(inbox:receive())
print('panicked worker gone:', pcall(p.send, p, 1))
local o = spawn_vm('.')
o:send({ role = 'orphan', back = inbox })
print(inbox:receive())
o = nil
collectgarbage()
print('main: end')
