-- ping-pong between two actors: N round trips (send + reply, each send a
-- rendezvous). arguments[4] == 'thread' puts the echo actor on another
-- thread. Prints ns per round trip.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then return end
    back:send(m)
  end
end
local time = require 'time'
local args = require('system').arguments
local n = tonumber(args[3])
local echo = spawn_vm({ module = '.', inherit_context = args[4] ~= 'thread' })
echo:send(inbox)
echo:send(0) inbox:receive() -- warm up
local t0 = time.steady_clock.now()
for i = 1, n do
  echo:send(i)
  inbox:receive()
end
print('ns_per_op', (time.steady_clock.now() - t0) / n * 1e9)
echo:close()
