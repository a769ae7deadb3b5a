-- The sandboxed worker of sandbox_methods_at_limit.lua (a copy of
-- tests/lua/sandboxed/fixtures/greeter.lua).
local inbox = require 'inbox'
local who = inbox:receive()
print('hello from a sandboxed ' .. _CONTEXT .. ', ' .. who)
local t = inbox:receive()
print(t.name, #t.list, t.list[3].deep)
print('then:', select(2, pcall(inbox.receive, inbox)))
