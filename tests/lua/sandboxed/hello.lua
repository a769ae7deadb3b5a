-- The one-line sandbox: a module resolved like an in-process spawn_vm,
-- its code sent to a fresh sandbox; messages reach its inbox; closing the
-- channel is its no_senders; its output is the host's (shared); the
-- monitor notice says how it ended. (The host prints only after the
-- notice: two processes share the stream.)
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/greeter', sandbox = {}, monitor = true }
local kind = getmetatable(ch)
ch:send('host')
ch:send{ name = 'nested', list = { 1, 2, { deep = true } } }
ch:close()
local late = { pcall(ch.send, ch, 'late') }
local notice = inbox:receive()
print('spawned', kind)
print('send after close:', late[1], tostring(late[2]))
print(notice.monitor, notice.sandbox, notice.reason, notice.code)
