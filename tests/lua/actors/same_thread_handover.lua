-- Numbers and booleans between VMs of one thread come with the
-- receiver's wake-up (src/actor/host.rs, Mailbox::take_handable) and owe
-- their receipt until a receive takes them. What a sender can see stays
-- as for any queued message: order per sender across the fast and the
-- slow path (strings, tables), receipts in the order of the receives, a
-- woken receiver keeps its message when interrupted in the same step, a
-- receiver that ends or closes its inbox while one is handed to it
-- refuses it (channel_closed), and one that received it before closing
-- in the same step does not.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  local role = inbox:receive()
  if role == 'order' then
    -- (main's seven fibers queued their messages before this step)
    for _ = 1, 7 do
      local m = inbox:receive()
      print('order: got', type(m) == 'table' and 'table ' .. m[1] or m)
    end
  elseif role == 'interrupt' then
    -- r waits in receive; t, woken by its receipt in the same step
    -- (receipts first), interrupts r before r runs with its message
    local r = spawn(function()
      local m = inbox:receive()
      print('interrupt: r got', m)
      print('interrupt: r then', pcall(inbox.receive, inbox))
    end)
    back:send('r waits')
    r:interrupt()
    r:join()
  elseif role == 'ends' then
    -- main sends a number right after taking this one: it is handed to
    -- the step that resumes this fiber, which then ends the VM
    back:send('bye')
    return
  elseif role == 'closes' then
    back:send('bye')
    inbox:close()
    print('closes: closed')
  elseif role == 'receives, closes' then
    -- received in the step it was handed to, then the inbox closes in
    -- that step: its sender was still told "delivered"
    back:send('bye')
    print('receives, closes: got', inbox:receive())
    inbox:close()
  end
  return
end

local function worker(role)
  local w = spawn_vm('.')
  w:send(inbox)
  w:send(role)
  return w
end

-- order per sender, fast and slow paths mixed; receipts in receive order
local w = worker('order')
local values = { 1, 'two', 3, { 4 }, true, 6.5, 'seven' }
local fibers = {}
for i, v in ipairs(values) do
  fibers[i] = spawn(function()
    w:send(v)
    print('order: send returned', i)
  end)
end
for _, f in ipairs(fibers) do f:join() end

w = worker('interrupt')
print('main: got', inbox:receive())
w:send(42)
print('main: 42 delivered')
this_fiber.yield()

w = worker('ends')
print('main: got', inbox:receive())
print('main: send to an ending VM', pcall(w.send, w, 5))

w = worker('closes')
print('main: got', inbox:receive())
print('main: send to a closing inbox', pcall(w.send, w, true))

w = worker('receives, closes')
print('main: got', inbox:receive())
print('main: send received before the inbox closed', pcall(w.send, w, 8))
print('main: done')
