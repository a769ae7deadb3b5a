-- raise, default and ignore change process-wide state: a worker VM gets
-- EPERM; it may still wait on its own signal sets and use kill()
local inbox = require 'inbox'
local system = require 'system'
local S = system.signal
if _CONTEXT == 'worker' then
  local main = inbox:receive()
  for _, name in ipairs{ 'raise', 'default', 'ignore' } do
    local ok, e = pcall(S[name], S.SIGUSR1)
    print('worker ' .. name .. ':', ok, tostring(e))
  end
  local set = S.set.new(S.SIGUSR2)
  main:send('ready')
  print('worker waited:', set:wait())
  main:send('done')
  return
end
local w = spawn_vm('.')
w:send(inbox)
print('main got:', inbox:receive())
-- from another thread: the worker's set (the only one holding SIGUSR2)
-- gets it
system.kill(system.getpid(), S.SIGUSR2)
print('main got:', inbox:receive())
