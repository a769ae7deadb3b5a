-- two actors waiting for each other's messages can never be woken: the
-- process ends (status 0) instead of hanging
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  print('worker: waiting')
  inbox:receive()
  return
end
local w = spawn_vm('.')
w:send(inbox)
print('main: waiting')
inbox:receive()
