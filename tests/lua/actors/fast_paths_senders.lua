-- A handle's cached address box (src/actor/raw_calls.rs) is not a sender:
-- closing or dropping the handle after scalar sends still gives its actor
-- no_senders.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local n = 0
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then
      print('worker: ' .. tostring(m) .. ', after', n)
      return
    end
    n = n + 1
  end
end
-- closed handle
local a = spawn_vm('.')
a:send(1)
a:send('two')
a:close()
print('main: closed one handle')
this_fiber.yield()
-- collected handle, never closed
local b = spawn_vm('.')
b:send(true)
b = nil -- luacheck: ignore (dropping the only reference is the point)
collectgarbage()
collectgarbage()
print('main: collected the other')
