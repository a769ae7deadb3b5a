-- spawn_vm + first round trip in bursts: ROUNDS rounds of K back-to-back
-- spawns, 20 ms apart (the nursery refills between them); prints wall and
-- process CPU per spawn inside the bursts only. Usage: ROUNDS K
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  m.back:send(true)
  pcall(inbox.receive, inbox)
  return
end
local time = require 'time'
local args = require('system').arguments
local rounds, k = tonumber(args[3]), tonumber(args[4])
local actors, wall, cpu = {}, 0, 0
for r = 1, rounds do
  time.sleep(0.02)
  local t0, c0 = time.steady_clock.now(), os.clock()
  for i = 1, k do
    local a = spawn_vm('.')
    a:send({ back = inbox })
    inbox:receive()
    actors[#actors + 1] = a
  end
  wall = wall + (time.steady_clock.now() - t0)
  cpu = cpu + (os.clock() - c0)
end
print('ns_per_op', wall / (rounds * k) * 1e9)
print('cpu_ns_per_op', cpu / (rounds * k) * 1e9)
