-- (sandboxed_actor bench) runs in a sandbox: the first message names the
-- channel to answer on and carries the first value; every later message
-- is echoed back until the spawner closes its channel.
local inbox = require 'inbox'
local first = inbox:receive()
local back = first.back
back:send(first.v)
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  back:send(m)
end
