-- spawn_vm resolves like require: '.', './x', '/x/y', packages, leaves
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  -- spawned with '.' from a non-init entry script: a leaf
  print('self worker:', pcall(require, './channel_object'))
  print('self worker:', require('/workers/sibling').value)
  return
end
local a = spawn_vm('/workers/echo_leaf')
a:send(inbox)
print(inbox:receive())
local b = spawn_vm('/workers/pkg')
b:send(inbox)
print(inbox:receive())
print(pcall(spawn_vm, './workers/pkg'))
local c = spawn_vm('.')
