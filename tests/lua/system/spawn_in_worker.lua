-- a worker actor (on its own thread) spawns and waits for its children
local inbox = require 'inbox'
local system = require 'system'
if _CONTEXT == 'worker' then
  local main = inbox:receive()
  local p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'exit 9' } }
  p:wait()
  local q = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
  q:kill(system.signal.SIGKILL)
  q:wait()
  main:send(p.exit_code .. ' ' .. q.exit_signal)
  return
end
local w = spawn_vm('.')
w:send(inbox)
print('worker saw:', inbox:receive())
