-- A sandboxed actor that never reads: the host's sends fill its socket,
-- then the next send suspends; interrupting it ends the send with
-- `interrupted` and the host goes on (and ends, killing the sandbox).
local time = require 'time'
local ch = spawn_vm{ module = '/fixtures/never_reads', sandbox = {} }
local chunk = string.rep('x', 60000)
local sent, err = 0, nil
local f = spawn(function()
  local ok, e = pcall(function()
    while true do
      ch:send(chunk)
      sent = sent + 1
    end
  end)
  err = e
end)
time.sleep(0.3)
f:interrupt()
f:join()
print('sender ended:', tostring(err))
print('some were sent before the socket filled:', sent > 0, sent < 100)
