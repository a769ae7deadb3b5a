-- across threads: a send still queued is withdrawn by interruption, a
-- blocked receive is interrupted, big and nested messages arrive whole
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  back:send('ready')
  -- blocked here until main takes 'hold': main's sends stay queued
  back:send('hold')
  local m = inbox:receive()
  back:send({ len = #m.big, same = m.big == string.rep('ab', 2 ^ 20), deep = m.deep.a.b.c })
  print('worker: next is', inbox:receive())
  return
end
local w = spawn_vm({ module = '.', inherit_context = false })
w:send(inbox)
print(inbox:receive())
local s = spawn(function() return pcall(w.send, w, 'withdrawn') end)
this_fiber.yield()
s:interrupt()
print('send interrupted', select(2, s:join()))
print(inbox:receive())
w:send({ big = string.rep('ab', 2 ^ 20), deep = { a = { b = { c = 'leaf' } } } })
local r = inbox:receive()
print('big', r.len, r.same, r.deep)
local f = spawn(function() return pcall(inbox.receive, inbox) end)
this_fiber.yield()
f:interrupt()
print('receive interrupted', select(2, f:join()))
w:send('after')
