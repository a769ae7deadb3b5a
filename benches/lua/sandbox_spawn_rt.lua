-- spawn of a `sandbox = {}` actor + its first message round trip, N times
-- (after 5 warm-up spawns). Each sandbox is closed and its end awaited
-- (monitor) before the next spawn; arguments[4] == 'spaced' waits 20 ms
-- before each spawn. Prints the median and p90 in ms.
local inbox = require 'inbox'
local time = require 'time'
local args = require('system').arguments
local n = tonumber(args[3])
local spaced = args[4] == 'spaced'
local samples = {}
for i = 1, n + 5 do
  if spaced then time.sleep(0.02) end
  local t0 = time.steady_clock.now()
  local ch = spawn_vm{ module = './sandbox_echo', sandbox = {}, monitor = true }
  ch:send{ back = inbox, v = i }
  local v = inbox:receive()
  local dt = time.steady_clock.now() - t0
  assert(v == i)
  if i > 5 then samples[#samples + 1] = dt end
  ch:close()
  local notice = inbox:receive()
  assert(notice.monitor == 'ended' and notice.code == 0)
end
table.sort(samples)
print('median_ms', samples[math.floor(#samples / 2) + 1] * 1e3)
print('p90_ms', samples[math.floor(#samples * 9 / 10) + 1] * 1e3)
