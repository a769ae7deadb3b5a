-- Limits of a sandboxed actor reach its monitor: a memory bomb hits the
-- Lua heap limit (reason 'memory'), an endless loop its CPU-time budget
-- (reason 'cpu_budget'). A memory error that the actor caught is not a
-- memory death: it goes on and ends normally ('exited', code 0).
-- Memory outside the Lua heap (byte_span storage) is bounded by
-- RLIMIT_AS, the memory limit + 1 GiB: ENOMEM, the actor goes on.
-- limits.open_files bounds the files it may hold (EMFILE), as does the
-- ring's table (28 slots of its own: docs/guide/sandboxes.md).
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
local filesystem = require 'filesystem'
local dir = tostring(filesystem.current_working_directory()) .. '/fixtures/granted'
local function files(sandbox)
  sandbox.read_only = { dir }
  local ch = spawn_vm{ module = '/fixtures/hog', sandbox = sandbox }
  ch:send{ what = 'files', path = dir .. '/data.txt', reply = inbox }
  local m = inbox:receive()
  print('files', m.n < 16 and 'fewer than 16' or m.n, m.err)
  print('files again', inbox:receive().again == m.n)
  ch:close()
end
files{ limits = { open_files = 16 } }
files{}
local ch = spawn_vm{ module = '/fixtures/hog', sandbox = { memory = 32 * 2^20 } }
ch:send{ what = 'spans', reply = inbox }
local m = inbox:receive()
print('spans', m.ok, m.err, m.n >= 1 and m.n <= 4)
ch:close()
