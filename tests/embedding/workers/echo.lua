-- Echoes every message to the channel it got first (tests/embedding_threads.rs).
local inbox = require 'inbox'
local reply = inbox:receive()
while true do
  local m = inbox:receive()
  if m == 'stop' then return end
  reply:send(m)
end
