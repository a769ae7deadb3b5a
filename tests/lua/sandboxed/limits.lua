-- Limits of a sandboxed actor reach its monitor: a memory bomb hits the
-- Lua heap limit (reason 'memory'), an endless loop its CPU-time budget
-- (reason 'cpu_budget'). A memory error that the actor caught is not a
-- memory death: it goes on and ends normally ('exited', code 0).
local inbox = require 'inbox'
local function run(what, sandbox)
  local ch = spawn_vm{ module = '/fixtures/hog', sandbox = sandbox, monitor = true }
  ch:send{ what = what, reply = inbox }
  local m = inbox:receive()
  if m.monitor == nil then
    print(what, 'reply', m.ok, m.err)
    ch:send('go on')
    m = inbox:receive()
  end
  print(what, m.monitor, m.reason, m.code, m.signal)
end
run('memory', { memory = 32 * 2^20 })
run('cpu', { cpu_seconds = 1 })
run('caught', { memory = 32 * 2^20 })
