-- After traffic with a sandbox each side watches its ring for the answer
-- before it sleeps; a watch that finds nothing (the peer is slow) sleeps,
-- and several back off from watching for a while (src/executor/mod.rs
-- `Executor::watched`). Whichever side is slow, and whether a side
-- watches, sleeps or backs off, every message arrives once, in order and
-- as sent: numbers, booleans, strings and tables mixed.
local inbox = require 'inbox'
local time = require 'time'
local ch = spawn_vm{ module = '/fixtures/slow_echo', sandbox = {} }
ch:send{ reply = inbox }
print(inbox:receive())

local function value(i)
  local k = i % 4
  if k == 0 then return i end
  if k == 1 then return i % 8 == 1 end
  if k == 2 then return 's' .. i end
  return { i }
end
local function show(m)
  if type(m) == 'table' then return 'table ' .. tostring(m[1]) end
  return tostring(m)
end

local bad = 0
local function exchange(i, how)
  local v = value(i)
  if how == 'sandbox slow' then
    ch:send{ pause = 2, v = v }
  else
    if how == 'host slow' then time.sleep(0.002) end
    ch:send(v)
  end
  local got = inbox:receive()
  if show(got) ~= show(v) then
    bad = bad + 1
    print('sent', show(v), 'got', show(got))
  end
end

local i = 0
for _, how in ipairs{ 'fast', 'sandbox slow', 'fast', 'host slow', 'fast', 'sandbox slow',
  'host slow', 'fast' } do
  -- the slow rounds are a few exchanges (two vain watches back off),
  -- the fast ones many
  local n = how == 'fast' and 200 or 4
  for _ = 1, n do
    i = i + 1
    exchange(i, how)
  end
  print(how, 'exchanges so far', i)
end
-- A burst the host does not receive at once: queued in order.
for j = i + 1, i + 8 do ch:send(value(j)) end
for j = i + 1, i + 8 do
  local got = inbox:receive()
  if show(got) ~= show(value(j)) then bad = bad + 1 print('burst', j, show(got)) end
end
print('messages out of place:', bad)
ch:close()
