-- How a sandboxed actor ended reaches its monitor: an error (exit 1,
-- its report on the shared stderr), system.exit, a kill.
local inbox = require 'inbox'
for _, how in ipairs({ 'error', 'exit', 'hang' }) do
  local ch = spawn_vm{ module = '/fixtures/crashes', sandbox = {}, monitor = true }
  ch:send(how)
  if how == 'hang' then ch:kill() end
  local n = inbox:receive()
  print(how, n.monitor, n.reason, n.code, n.signal)
end
