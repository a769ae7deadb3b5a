-- throughput: an actor on another thread sends N small tables to this
-- one, from 16 fibers (a send waits for its receipt, so concurrent senders
-- keep the queue fed). Prints messages per second.
local inbox = require 'inbox'
local FIBERS = 16
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  local per = m.n / FIBERS
  local fibers = {}
  for f = 1, FIBERS do
    fibers[f] = spawn(function()
      for i = 1, per do m.back:send({ f = f, i = i, tag = 'x' }) end
    end)
  end
  for f = 1, FIBERS do fibers[f]:join() end
  return
end
local time = require 'time'
local n = tonumber(require('system').arguments[3])
n = n - n % FIBERS
local w = spawn_vm({ module = '.', inherit_context = false })
local t0 = time.steady_clock.now()
w:send({ back = inbox, n = n })
for _ = 1, n do inbox:receive() end
print('msgs_per_s', n / (time.steady_clock.now() - t0))
