-- spawn_vm compiles a worker module once per process and later starts load
-- that compile's bytecode (docs/performance.md "spawnstart"): each start
-- still reports the module's file and line numbers (errors, a panic's
-- traceback) and has its own _FILE and _CONTEXT; a module file that is
-- bytecode is refused, the first time and the next.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  local function fail()
    error('worker ' .. m.n .. ' failed on purpose')
  end
  local _, err = pcall(fail)
  m.back:send(_CONTEXT .. ' ' .. tostring(_FILE):match('[^/]*$') .. ' ' .. err)
  if m.n == 3 then fail() end
  return
end
for _ = 1, 2 do
  print(pcall(spawn_vm, '/fixtures/bytecode_mod'))
end
for n = 1, 3 do
  local w = spawn_vm('.')
  w:send({ back = inbox, n = n })
  print(n, inbox:receive())
end
