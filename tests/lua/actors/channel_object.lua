-- tx-channel object: metatable name, __eq, bad_index, close, argument checks
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  m.back:send('ready')
  inbox:receive()
  return
end
local a = spawn_vm('.')
local b = spawn_vm('.')
print(getmetatable(a), getmetatable(inbox))
print('a == a', a == a, 'a == b', a == b)
a:send({ back = inbox })
local echoed = inbox:receive()
print('echoed', echoed)
print('bad index', pcall(function() return a.nope end))
print('bad index inbox', pcall(function() return inbox.send end))
print('assign', pcall(function() a.x = 1 end))
print('no message', select(2, pcall(a.send, a)).arg)
print('nil message', pcall(a.send, a, nil))
print('function', pcall(a.send, a, print))
print('coroutine', pcall(a.send, a, coroutine.create(print)))
print('byte_span', pcall(a.send, a, byte_span.new(1)))
print('metatable', pcall(a.send, a, setmetatable({}, {})))
local cycle = {} cycle.self = cycle
print('cycle', pcall(a.send, a, cycle))
print('wrong self', pcall(a.send, {}, 1))
b:close()
b:close()
print('closed send', pcall(b.send, b, 1))
print('closed == open', b == a)
a:send('last')  -- the worker takes it and ends
b = nil
collectgarbage()
-- a's VM is gone: sends fail at once
print('ended send', pcall(a.send, a, 1))
