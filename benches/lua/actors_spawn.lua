-- spawn_vm + first round trip, N actors kept alive; prints wall ns per
-- actor and CPU ns per actor (the whole process, spawn loop only), then waits (reading RSS is the driver's job) before releasing them.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  m.back:send(true)
  pcall(inbox.receive, inbox)  -- idle until the spawner lets go
  return
end
local time = require 'time'
local n = tonumber(require('system').arguments[3])
local actors = {}
local t0, cpu0 = time.steady_clock.now(), os.clock()
for i = 1, n do
  local a = spawn_vm('.')
  a:send({ back = inbox })
  inbox:receive()
  actors[i] = a
end
print('ns_per_op', (time.steady_clock.now() - t0) / n * 1e9)
print('cpu_ns_per_op', (os.clock() - cpu0) / n * 1e9)
-- the driver reads the peak RSS (N idle actors alive) when this exits
