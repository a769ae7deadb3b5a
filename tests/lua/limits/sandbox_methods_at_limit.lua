-- options: --memory-limit 16M
-- (Not in tests/lua/sandboxed: its scripts also run as an unprivileged
-- user without their options, tests/sandboxed_vm.rs.)
-- A sandboxed channel's methods are a lazy core chunk (lua/core/
-- sandboxes.lua), loaded by this VM's first sandbox spawn. A spawn on a
-- full heap fails with a catchable "not enough memory" and leaves nothing
-- half made: once memory is freed, a spawn gets a channel whose methods
-- all work.
local inbox = require 'inbox'
-- (loads the spawn code, lua/core/loader.lua, before the limit)
local bad = { pcall(spawn_vm, { module = '/nowhere', sandbox = {} }) }
-- Nothing the spawn needs is made after the heap is filled but what it
-- makes itself (as in tests/lua/limits/lazy_core_chunks_at_limit.lua).
local spec = { module = '/sandbox_greeter', sandbox = {}, monitor = true }
local hog
-- (bounded: should the limit be missing, this does not take the machine)
local function grow() for _ = 1, 2e6 do hog = { hog } end end
collectgarbage()
pcall(grow)
pcall(grow)
local ok, err = pcall(spawn_vm, spec)
hog = nil
collectgarbage()
local ch = spawn_vm{ module = '/sandbox_greeter', sandbox = {}, monitor = true }
local pid = ch.child_pid
local bad_key = { pcall(function() return ch.nope end) }
ch:send('host')
ch:send{ name = 'nested', list = { 1, 2, { deep = true } } }
ch:close()
local notice = inbox:receive()
-- (the host prints only after the notice: two processes share the stream)
print('bad module', bad[1], tostring(bad[2]))
print('spawn at the limit', ok, tostring(err):find('not enough memory', 1, true) ~= nil)
print('child_pid', type(pid))
print('bad key', bad_key[1], tostring(bad_key[2]))
print(notice.monitor, notice.sandbox, notice.reason, notice.code)
