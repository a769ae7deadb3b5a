-- A sandbox holds the channels it was sent until it ends: a third actor
-- whose only other sender let go still gets messages from the sandbox,
-- and its receive fails with no_senders only once the sandbox ended.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local main = inbox:receive()
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then
      main:send{ third = tostring(m) }
      return
    end
    main:send{ third = m }
  end
end
local third = spawn_vm{ module = '.' }
third:send(inbox)
local ch = spawn_vm{ module = '/fixtures/routes_holder', sandbox = {}, monitor = true }
ch:send{ third = third }
third = nil
collectgarbage()
collectgarbage()
-- Only the sandbox can reach the third actor now.
ch:send('ping the third')
print('third got:', inbox:receive().third)
ch:close()
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
print('then the third:', inbox:receive().third)
