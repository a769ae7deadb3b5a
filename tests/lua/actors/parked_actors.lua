-- Many idle actors on one thread, more than its host parks (host.rs
-- PARK_ABOVE): each parked actor is woken again by a message from its own
-- thread, by one from another thread, or by its last sender going away;
-- one of them waits on a timer among the parked ones.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m.relay then -- on another thread: writes to each target in turn
    for _, w in ipairs(m.targets) do w:send({ from = 'another thread' }) end
    m.back:send('relayed')
    return
  end
  if m.sleeper then -- has a ring: never parked, woken by its timer
    require('time').sleep(0.02)
    m.back:send({ id = m.id, from = 'its timer' })
    return
  end
  m.back:send({ id = m.id, from = 'started' }) -- idle now: parked
  local second = inbox:receive()
  m.back:send({ id = m.id, from = second.from })
  if m.id <= 20 then -- parked again until its last sender goes away
    local ok, err = pcall(inbox.receive, inbox)
    m.back:send({ id = m.id, from = ok and 'a message?' or tostring(err) })
  end
  return
end

local N = 40
local workers = {}
local count, relayed = {}, false
local function take(m)
  if m == 'relayed' then
    relayed = true
  else
    count[m.from] = (count[m.from] or 0) + 1
  end
end
local sleeper = spawn_vm('.')
sleeper:send({ sleeper = true, id = 0, back = inbox })
for id = 1, N do
  workers[id] = spawn_vm('.')
  workers[id]:send({ id = id, back = inbox })
  take(inbox:receive()) -- 'started' (or the timer, on a slow machine)
end
while count.started ~= N do take(inbox:receive()) end
-- 1..20: woken from this thread
for id = 1, 20 do workers[id]:send({ from = 'this thread' }) end
-- 21..40: woken from another thread
local targets = {}
for id = 21, N do targets[#targets + 1] = workers[id] end
spawn_vm({ module = '.', inherit_context = false })
  :send({ relay = true, targets = targets, back = inbox })
targets = nil
while not relayed or (count['this thread'] or 0) + (count['another thread'] or 0) < N
  or not count['its timer'] do
  take(inbox:receive())
end
print('relayed', relayed)
for _, from in ipairs({ 'this thread', 'another thread', 'its timer' }) do
  print(from, count[from])
end
-- 1..20: their last sender (this VM's handle) is collected
for id = 1, 20 do workers[id] = nil end
collectgarbage()
collectgarbage()
local ended = {}
for _ = 1, 20 do
  local m = inbox:receive()
  ended[m.from] = (ended[m.from] or 0) + 1
end
for from, n in pairs(ended) do print(from, n) end
