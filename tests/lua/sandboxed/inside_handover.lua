-- Inside a sandbox, a boolean or number frame for a fiber waiting in
-- receive is handed to it with the ring turn that read it (no
-- control_decode; src/actor/sandboxed/inside.rs). Mixed with strings and
-- tables, with receives interrupted while a frame is on its way and with
-- frames read ahead, every frame arrives once, in order, as sent.
local inbox = require 'inbox'
local ch = spawn_vm{ module = '/fixtures/receives_interrupted', sandbox = {} }
local n = 300
ch:send{ reply = inbox, n = n }
local function value(i)
  local k = i % 5
  if k == 0 then return i end
  if k == 1 then return i % 10 == 1 end
  if k == 2 then return 's' .. i end
  if k == 3 then return { i } end
  return i + 0.5
end
local function show(v)
  if type(v) == 'table' then return 't' .. v[1] end
  return tostring(v)
end
local expected = {}
for i = 1, n do expected[i] = show(value(i)) end
expected = table.concat(expected, ' ')
for i = 1, n do
  local asked = inbox:receive()
  if asked ~= i then print('asked', asked, 'expected', i) end
  ch:send(value(i))
end
local r = inbox:receive()
print('interrupted receives: all frames once, in order:', r.got == expected)
if r.got ~= expected then print(r.got) end
print('every fiber received or was interrupted:', r.sum == n)
-- Sent in a burst: most are read ahead (control_recv), some handed over.
for i = 1, n do ch:send(value(i)) end
r = inbox:receive()
print('burst: all frames once, in order:', r.got == expected)
if r.got ~= expected then print(r.got) end
ch:close()
