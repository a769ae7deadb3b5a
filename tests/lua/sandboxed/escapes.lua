-- A sandboxed actor's escapes at the Lua level (SECURITY.md 22, "open a
-- path", "make a new ring"): no io/ffi/debug, no binary chunks, no host
-- file through require or the file module (the ring refuses paths), no
-- second VM (its ring is the only one it may have).
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/escapes', sandbox = {}, monitor = true }
ch:send('go')
local notice = inbox:receive()
print(notice.reason, notice.code)
