-- The sandboxed side of sandbox_fd.lua: replies to each message, closing
-- the descriptor it got, or sending it back.
local inbox = require 'inbox'
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  if m.fd and m.back then
    m.reply:send{ n = m.n, fd = m.fd }
    m.fd:close() -- sending copies: the slot stays taken until closed
  else
    if m.fd then m.fd:close() end
    m.reply:send{ n = m.n }
  end
end
