-- monitors: spawn_vm{monitor = true} puts a notice in the spawner's inbox
-- when the actor ends: normally, or with its main fiber's error
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m == 'error' then error('worker gave up') end
  return
end
local function show(notice, expected)
  print(notice.monitor, notice.reason, notice.error, notice.actor == expected)
end
-- The two workers that fail are alive together from the start: a VM's id
-- (in its panic report) is an address in its heap, which a later VM may
-- reuse once the first ended, and the expected output names two ids.
local failing = {}
for i, inherit in ipairs({ true, false }) do
  failing[i] = spawn_vm({ module = '.', monitor = true, inherit_context = inherit })
end
for i, inherit in ipairs({ true, false }) do
  local a = spawn_vm({ module = '.', monitor = true, inherit_context = inherit })
  a:send('ok')
  show(inbox:receive(), a)
  local b = failing[i]
  b:send('error')
  show(inbox:receive(), b)
  -- the notice's channel addresses the dead actor
  print(pcall(b.send, b, 1))
end
print(pcall(spawn_vm, { module = '.', monitor = 1 }))
-- an actor without a monitor sends no notice: the monitor counted as a
-- sender of this inbox, so with none left receive fails at once
local c = spawn_vm('.')
c:send('ok')
print(pcall(inbox.receive, inbox))
