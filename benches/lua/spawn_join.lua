-- luring side of the spawn+join benchmark. args: MODE N
-- seq:   spawn one fiber and join it, N times (one live fiber at a time)
-- batch: spawn N fibers, then join them all (N live fibers)
-- closures: like batch, but each fiber runs its own closure (capturing
--        its index, returning a value): what a real program spawns
local time = require 'time'
local system = require 'system'
local mode, n = system.arguments[3], tonumber(system.arguments[4])
local now = time.steady_clock.now
local function body() end
local t0 = now()
if mode == 'seq' then
  for _ = 1, n do spawn(body):join() end
elseif mode == 'closures' then
  local handles = {}
  for i = 1, n do handles[i] = spawn(function() return i end) end
  for i = 1, n do handles[i]:join() end
else
  local handles = {}
  for i = 1, n do handles[i] = spawn(body) end
  for i = 1, n do handles[i]:join() end
end
print('ns_per_op', (now() - t0) / n * 1e9)
