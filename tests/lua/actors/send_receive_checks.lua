-- send and receive refuse to suspend where a fiber may not (checked
-- before anything is queued: the worker sees only the messages sent from
-- a fiber that may suspend), and send() without a value is EINVAL.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then return end
    print('worker: got', m)
    if m == 'last' then back:send('ack') end
  end
end
local w = spawn_vm('.')
w:send(inbox)
local function try(what, f, ...)
  local ok, err = pcall(f, ...)
  print(what, ok, ok or tostring(err))
end
-- no value / nil
try('send()', w.send, w)
try('send(nil)', w.send, w, nil)
-- suspension forbidden
this_fiber.forbid_suspend()
try('forbidden send', w.send, w, 1)
try('forbidden receive', inbox.receive, inbox)
this_fiber.allow_suspend()
-- not yieldable: a callback from C, a user coroutine
try('send in sort', table.sort, { 2, 1 }, function(a, b) w:send(2) return a < b end)
try('receive in gsub', string.gsub, 'x', 'x', function() return inbox:receive() end)
try('send in coroutine', coroutine.wrap(function() w:send(3) end))
-- an interruption pending when the fiber gets to send / receive: it ends
-- there (pcall does not stop an interruption), nothing was queued (the
-- worker never gets 4) and the inbox is free again
for _, what in ipairs({ 'send', 'receive' }) do
  local f = spawn(function()
    this_fiber.disable_interruption()
    this_fiber.yield() -- interrupted meanwhile
    this_fiber.restore_interruption()
    if what == 'send' then w:send(4) else inbox:receive() end
    print('not reached')
  end)
  this_fiber.yield()
  f:interrupt()
  f:join()
  print('interrupted ' .. what .. ' ended')
end
-- and the channel still works; a queued message is returned even where
-- the fiber could not suspend (receive checks that only when it would
-- wait: here the worker's reply is queued once its receipt ended our send)
w:send('last')
print('reply in gsub', string.gsub('x', 'x', function() return inbox:receive() end))
w:close()
