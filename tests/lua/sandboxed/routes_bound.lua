-- A sandbox holds channels to at most 64 actors besides its spawner: one
-- message can carry 64 channels, each to a different actor, and the
-- sandbox sends on each; the same channels again take no new room. A
-- channel to a 65th actor is a clear error and nothing of that message is
-- sent: its descriptors are not installed (the sandbox's 32 slots for
-- received descriptors stay free).
local inbox = require 'inbox'
local pipe = require 'pipe'
if _CONTEXT == 'worker' then
  -- Tells the main actor the number the sandbox sends it.
  local main = inbox:receive()
  main:send{ got = inbox:receive().i }
  return
end
local actors = {}
for i = 1, 65 do
  actors[i] = spawn_vm{ module = '.' }
  actors[i]:send(inbox)
end
local ch = spawn_vm{ module = '/fixtures/routes_count', sandbox = {} }
ch:send{ op = 'hello', reply = inbox }
local list = {}
for i = 1, 64 do list[i] = actors[i] end
ch:send{ op = 'list', list = list }
print('64 channels:', inbox:receive().n)
ch:send{ op = 'list', list = list }
print('the same again:', inbox:receive().n)
local r, w = pipe.pair()
local fd = r:release()
local fds = {}
for i = 1, 32 do fds[i] = fd end
local ok, e = pcall(ch.send, ch, { op = 'keep', fds = fds, one_more = actors[65] })
print('a 65th actor:', ok, e)
ch:send{ op = 'keep', fds = fds }
print('then 32 descriptors:', inbox:receive().kept)
-- The sandbox sends to each of the 64 (known routes work with a full table).
ch:send{ op = 'send_all' }
local sum, count, sent = 0, 0, nil
for _ = 1, 65 do
  local m = inbox:receive()
  if m.sent then sent = m.sent else sum, count = sum + m.got, count + 1 end
end
print('sent', sent, 'received', count, 'sum', sum)
actors[65]:send{ i = 0 }
print('the 65th still works in-process:', inbox:receive().got)
ch:close()
