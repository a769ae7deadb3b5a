-- Several sends of one VM taken in the same step of the receiver: their
-- receipts reach the sender together (the host hands a step one receipt
-- as arguments; several go through rt.mailbox_poll, src/actor/vm.rs
-- `Receipts`). Every sender resumes once, in the order it was taken, and
-- a receive that waits meanwhile still gets its message.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  for _ = 1, 5 do print('worker: got', inbox:receive()) end
  back:send('reply')
  for _ = 1, 3 do print('worker: got', inbox:receive()) end
  back:send('reply 2')
  return
end
local w = spawn_vm('.')
w:send(inbox)
local fibers = {}
for i = 1, 5 do
  fibers[i] = spawn(function()
    w:send(i)
    print('main: send returned', i)
  end)
end
print('main: receiving')
print('main: got', inbox:receive())
for _, f in ipairs(fibers) do f:join() end
-- again, with the receiver already waiting while the receipts come
local r = spawn(function() print('main: got', inbox:receive()) end)
local s = {}
for i = 6, 8 do s[i] = spawn(function() w:send(i) print('main: send returned', i) end) end
r:join()
for i = 6, 8 do s[i]:join() end
print('main: done')
