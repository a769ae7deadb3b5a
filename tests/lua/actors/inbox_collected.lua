-- after a worker's main fiber ended, the runtime lets go of its inbox:
-- once the worker's code holds no reference either, a collection closes
-- it and sends to that worker fail with channel_closed
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  spawn(function()
    this_fiber.yield() -- the main fiber has finished now
    collectgarbage()
    collectgarbage()
    back:send('collected')
  end)
  return
end
local w = spawn_vm('.')
w:send(inbox)
print(inbox:receive())
print(pcall(w.send, w, 'anyone?'))
