-- A frame that never left takes its new routes back: a sandbox whose
-- socket is full is sent a third actor's channel, the send is
-- interrupted, and the route is revoked at once (the sandbox cannot reach
-- that actor by guessing its route id): with main's handle gone, the
-- third actor gets no_senders while the sandbox still runs.
local time = require 'time'
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local main = inbox:receive()
  local ok, e = pcall(inbox.receive, inbox)
  main:send{ third = ok and 'a message' or tostring(e) }
  return
end
local third = spawn_vm{ module = '.' }
third:send(inbox)
local ch = spawn_vm{ module = '/fixtures/never_reads', sandbox = {} }
-- Fill the sandbox's socket (it never reads).
local chunk = string.rep('x', 60000)
local filler = spawn(function()
  pcall(function() while true do ch:send(chunk) end end)
end)
time.sleep(0.3)
filler:interrupt()
filler:join()
-- The socket is full: this send suspends with the channel in its frame.
local err
local giver = spawn(function()
  local _, e = pcall(ch.send, ch, { t = third })
  err = e
end)
this_fiber.yield()
giver:interrupt()
giver:join()
print('giving ended:', tostring(err))
third = nil
collectgarbage()
collectgarbage()
print('then the third:', inbox:receive().third)
