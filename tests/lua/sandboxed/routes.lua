-- Any in-process channel can be sent into a sandbox: here a third actor's
-- (on another thread). The sandbox sends on it and the third actor
-- receives; sent back inside a nested table, it arrives as a channel to
-- that same actor, which the host can send on. A message to a route whose
-- actor ended is dropped; the sandbox goes on.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  -- The third actor: tells the main actor what it receives.
  local main = inbox:receive()
  while true do
    local m = inbox:receive()
    if m.text == 'stop' then return end
    main:send{ third_got = m.text, from = m.from }
  end
end
local third = spawn_vm{ module = '.', inherit_context = false }
third:send(inbox)
local ch = spawn_vm{ module = '/fixtures/routes_user', sandbox = {}, monitor = true }
ch:send{ reply = inbox, third = third }
local function third_got()
  local m = inbox:receive()
  print('third got:', m.third_got, 'from', m.from)
end
third_got()
ch:send('next')
local r = inbox:receive()
print('back:', getmetatable(r.back.nested[1]), getmetatable(r.host))
-- (a send is a rendezvous: another fiber sends through the channel)
local f = spawn(function()
  r.back.nested[1]:send{ text = 'through the returned channel', from = 'the host' }
end)
third_got()
f:join()
-- The host's own inbox, sent back beside it, is still the host's.
f = spawn(function() r.host:send{ text = 'to myself' } end)
print('host:', inbox:receive().text)
f:join()
ch:send('next')
print('own inbox:', inbox:receive().own_inbox)
third:send{ text = 'stop' }
ch:send('next')
print('after:', inbox:receive().after)
local notice = inbox:receive()
print(notice.monitor, notice.reason, notice.code)
