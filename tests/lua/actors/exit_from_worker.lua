-- exit: 7
-- system.exit in any actor ends the process with that code
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  print('worker: exiting')
  require('system').exit(7)
  print('not reached')
end
local w = spawn_vm('.')
w:send(inbox)
print('main: waits for ever')
inbox:receive()
print('not reached either')
