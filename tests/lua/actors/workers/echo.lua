-- echoes every message to the first one it got, until no sender is left
local inbox = require 'inbox'
local back = inbox:receive()
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then break end
  back:send(m)
end
