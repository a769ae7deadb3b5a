-- Messages over the frame bounds (docs/ipc.md) are refused at the sender
-- with an error naming the bound; nothing is sent, and the channel still
-- works. A channel to a sandbox is not an in-process address: refused.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/echo', sandbox = {}, monitor = true }
local deep = {}
local t = deep
for _ = 1, 100 do t.next = {} t = t.next end
local wide = {}
for i = 1, 5000 do wide[i] = i end
local other = spawn_vm{ module = '/fixtures/idle', sandbox = {} }
for _, case in ipairs({
  { 'huge', string.rep('x', 200000) },
  { 'deep', deep },
  { 'wide', wide },
  { 'sandbox channel', other },
  { 'userdata', require('system').out },
}) do
  local name, msg = case[1], case[2]
  local ok, e = pcall(ch.send, ch, msg)
  print(name, ok, (tostring(e):gsub('%d+', 'N')))
end
ch:send{ text = 'still here', n = 0, reply = inbox }
print(inbox:receive().echo)
ch:close()
print(inbox:receive().reason)
