-- A receiver owes the "delivered" receipt of the message it took until it
-- posts to that sender (the receipt then travels with the reply), takes
-- the next message, or its fiber suspends, or its VM ends
-- (src/actor/raw_calls.rs "Owed receipts"). Every way must release the
-- sender: on the same thread and across threads. A lost receipt would
-- leave a send blocked for ever (the case times out).
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  local how = inbox:receive()
  if how == 'reply' then
    back:send('reply to ' .. inbox:receive())
  elseif how == 'take again' then
    inbox:receive()
    inbox:receive()
  elseif how == 'suspend' then
    inbox:receive()
    -- suspends on something else: the send above was released before
    -- (the master ends the process)
    require('time').sleep(60)
  elseif how == 'end' then
    inbox:receive()
    -- the VM ends right after its take
  end
  return
end
for _, thread in ipairs({ false, true }) do
  local where = thread and 'other thread' or 'same thread'
  for _, how in ipairs({ 'reply', 'take again', 'suspend', 'end' }) do
    local w = spawn_vm({ module = '.', inherit_context = not thread })
    w:send(inbox)
    w:send(how)
    print(where, how, pcall(w.send, w, 1))
    if how == 'reply' then print(where, how, inbox:receive()) end
    if how == 'take again' then print(where, how, pcall(w.send, w, 2)) end
    w:close()
  end
end
require('system').exit(0)
