-- Numbers and booleans from a sandbox to a fiber waiting in receive are
-- handed to it with the ring turn instead of through the inbox
-- (src/actor/sandboxed/ring_relay.rs HandOver). Whatever path each takes,
-- every message arrives once, in order and as sent: received at once, or
-- queued while nobody receives (then the inbox holds them and later ones
-- queue behind), mixed with strings and tables, and with receives
-- interrupted while a reply is on its way.
local inbox = require 'inbox'
local time = require 'time'
local ch = spawn_vm{ module = '/fixtures/scalars', sandbox = {} }
ch:send{ reply = inbox }
print(inbox:receive())

local values = { 0, -1.5, 2^53, 1/0, -1/0, true, false, 'x', 3.25e-300 }
local same = true
for _, v in ipairs(values) do
  ch:send(v)
  local got = inbox:receive()
  if got ~= v then same = false print('sent', v, 'got', got) end
end
ch:send(0/0)
local nan = inbox:receive()
print('values come back as sent:', same, nan ~= nan)

local function expected(i)
  local k = i % 4
  if k == 0 then return i end
  if k == 1 then return i % 8 == 1 end
  if k == 2 then return 's' .. i end
  return 'table ' .. i
end
local function show(m)
  if type(m) == 'table' then return 'table ' .. m[1] end
  return m
end
local function check_burst(n, label)
  local ok = true
  for i = 1, n do
    local m = show(inbox:receive())
    if m ~= expected(i) then
      ok = false
      print(label, 'at', i, 'got', m, 'expected', expected(i))
      break
    end
  end
  print(label, 'in order:', ok)
end
-- Received as they come (the fiber waits in receive most of the time).
ch:send{ burst = 200 }
check_burst(200, 'burst, received at once')
-- Sent while nobody receives: the first frames queue in the inbox.
ch:send{ burst = 200 }
time.sleep(0.05)
check_burst(200, 'burst, received later')
-- Receives interrupted before or after a number's echo came.
local got, interrupted = {}, 0
for i = 1, 200 do
  local f = spawn(function()
    local ok, m = pcall(inbox.receive, inbox)
    if ok then got[#got + 1] = m else interrupted = interrupted + 1 end
  end)
  this_fiber.yield() -- the fiber now waits in receive
  ch:send(i)
  for _ = 1, i % 3 do this_fiber.yield() end
  f:interrupt()
  f:join()
  if #got < i then got[#got + 1] = inbox:receive() end
end
local in_order = #got == 200
for i = 1, 200 do
  if got[i] ~= i then in_order = false print('at', i, got[i]) break end
end
print('interrupted receives: every echo once, in order:', in_order)
ch:close()
