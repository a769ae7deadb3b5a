-- ping-pong with a sandboxed actor: N round trips (send + reply; each
-- send completes once its frame is written). Prints ns per round trip.
local inbox = require 'inbox'
local time = require 'time'
local n = tonumber(require('system').arguments[3])
local ch = spawn_vm{ module = './sandbox_echo', sandbox = {} }
ch:send{ back = inbox, v = 0 }
inbox:receive()
for i = 1, 1000 do ch:send(i) inbox:receive() end -- warm up
local t0 = time.steady_clock.now()
for i = 1, n do
  ch:send(i)
  inbox:receive()
end
print('ns_per_op', (time.steady_clock.now() - t0) / n * 1e9)
ch:close()
