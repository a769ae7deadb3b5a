-- Code the runtime loads on first use (lua/core/scopes.lua, fibers.lua,
-- coroutines.lua) works inside a sandboxed actor, whose first use it is.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/lazy_code', sandbox = {}, monitor = true }
ch:send(inbox)
print(inbox:receive())
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
