-- inbox: no_senders, EBUSY, interruption of receive and of a queued send,
-- closing an inbox with queued messages
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  print('worker:', inbox:receive())
  -- main does not receive this one until it closes its inbox: meanwhile
  -- this VM takes nothing, so main's sends to it stay queued
  print('worker: blocked send ends with', pcall(back.send, back, 'blocker'))
  print('worker: next message', inbox:receive())
  return
end
print('no senders yet', pcall(inbox.receive, inbox))
local w = spawn_vm('.')
w:send(inbox)
-- EBUSY: a second receiver while one waits
local f = spawn(function() return pcall(inbox.receive, inbox) end)
this_fiber.yield()
print('second receiver', pcall(inbox.receive, inbox))
-- interrupting the receive: the waiting fiber gets `interrupted`
f:interrupt()
print('receive interrupted', select(2, f:join()))
w:send('go')
-- interrupting a send whose message is still queued withdraws it
local s = spawn(function() return pcall(w.send, w, 'withdrawn') end)
this_fiber.yield()
s:interrupt()
print('send interrupted', select(2, s:join()))
-- closing the inbox refuses the queued 'blocker': its sender is told
inbox:close()
inbox:close()
print('receive on closed', pcall(inbox.receive, inbox))
w:send('after')
print('main: end')
