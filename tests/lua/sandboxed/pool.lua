-- `sandbox = {}` spawns in a row: from the second on, the supervisor may
-- hand over a sandbox it started ahead (docs/guide/sandboxes.md,
-- "Start-up"; tests/sandboxed_vm.rs checks which spawn took it). Each
-- behaves as a fresh one: nothing of an earlier sandbox's globals, the
-- host's stdout, its own monitor notice. The pauses between spawns leave
-- the supervisor time to start the next one ahead (nothing to await from
-- Lua: both ways must print the same). The host prints only at the end:
-- two processes share the stream.
local inbox = require 'inbox'
local time = require 'time'
local lines = {}
for i = 1, 4 do
  local ch = spawn_vm{ module = '/fixtures/globals', sandbox = {}, monitor = true }
  ch:send{ back = inbox, i = i }
  local seen = inbox:receive()
  local notice = inbox:receive()
  lines[i] = table.concat({ i, 'saw', seen, notice.reason, notice.code }, '\t')
  if i % 2 == 0 then time.sleep(0.02) end
end
print(table.concat(lines, '\n'))
