-- exit: 5
-- The VM that spawned a sandbox ends while the sandbox still sends to it
-- (its frames are read on that VM's ring): the sandbox is killed with it,
-- nothing hangs, and the process goes on. From a VM on this thread and
-- from one on its own thread; then system.exit while this VM's own
-- sandbox sends.
local inbox = require 'inbox'
for _, own_thread in ipairs({ false, true }) do
  spawn_vm{ module = '/fixtures/ends_mid_flood', inherit_context = not own_thread,
            monitor = true }
  local n = inbox:receive()
  print('worker ended:', n.reason, own_thread)
end
local ch = spawn_vm{ module = '/fixtures/sends_forever', sandbox = {}, monitor = true }
ch:send{ reply = inbox }
print(inbox:receive(), inbox:receive())
require('system').exit(5)
