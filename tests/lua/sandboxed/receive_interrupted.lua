-- Receives interrupted while a sandbox's replies are on their way (read
-- on this VM's ring): an interrupted receive takes nothing, so every
-- reply is received exactly once and in order, by the fiber or after it.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/echo', sandbox = {} }
local got, by_fiber, interrupted = {}, 0, 0
for i = 1, 300 do
  local f = spawn(function()
    local ok, m = pcall(inbox.receive, inbox)
    if ok then
      got[#got + 1] = m.n
      by_fiber = by_fiber + 1
    else
      interrupted = interrupted + 1
    end
  end)
  this_fiber.yield() -- the fiber now waits in receive
  ch:send{ text = 'x', n = i, reply = inbox }
  -- Interrupted before or after the reply came, at random.
  for _ = 1, i % 3 do this_fiber.yield() end
  f:interrupt()
  f:join()
  if #got < i then got[#got + 1] = inbox:receive().n end
end
local in_order = true
for i = 1, 300 do
  if got[i] ~= i + 1 then in_order = false print('at', i, got[i]) break end
end
print('all 300 replies once, in order:', in_order, #got)
print('every fiber received or was interrupted:', by_fiber + interrupted == 300)
