-- options: --memory-limit 64M
-- VMs booted ahead by the nursery thread (docs/architecture.md "Spawning")
-- run on the spawner's thread and on new threads like VMs booted in
-- place: back-to-back spawns (most take a pooled VM) whose actors exchange
-- messages, sleep on timers, do pipe I/O through their own rings and
-- inherit the spawner's memory limit
local inbox = require 'inbox'
local pipe = require 'pipe'
local time = require 'time'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  time.sleep(0.002)
  local r, w = pipe.pair()
  w:write_some('ping ' .. m.id)
  local buf = byte_span.new(16)
  local n = r:read_some(buf)
  -- past the inherited limit (64M): refused in this VM only
  local ok, err = pcall(string.rep, 'x', 80 * 1024 * 1024)
  m.back:send({ id = m.id, read = tostring(buf:slice(1, n)),
    limited = not ok and tostring(err):match('not enough memory') ~= nil })
  -- a second round trip, after the first reply
  m.back:send(m.id + inbox:receive())
  return
end

local actors = {}
for id = 1, 12 do
  actors[id] = spawn_vm({ module = '.', inherit_context = id % 3 ~= 0 })
  actors[id]:send({ id = id, back = inbox })
end
local replies = {}
for _ = 1, 12 do
  local r = inbox:receive()
  replies[r.id] = r
end
for id = 1, 12 do
  local r = replies[id]
  print(id, r.read, r.limited)
  actors[id]:send(100)
  print(id, inbox:receive())
end
