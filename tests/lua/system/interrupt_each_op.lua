-- stdin-open
-- issue 9 item 8: interrupting a fiber cancels whatever op it waits in,
-- and it sees `interrupted`, for each kind of pending op on this branch:
-- pipe read, standard input read, sleep, timer wait, subprocess wait,
-- signal set wait
local system = require 'system'
local pipe = require 'pipe'
local time = require 'time'

local r, w = pipe.pair()
local child = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
local set = system.signal.set.new(system.signal.SIGUSR1)
local timer = time.steady_timer.new()
timer:expires_after(1000)

local ops = {
  { 'pipe read_some', function() r:read_some(byte_span.new(8)) end },
  { 'system.in_ read_some', function() system.in_:read_some(byte_span.new(8)) end },
  { 'time.sleep', function() time.sleep(1000) end },
  { 'steady_timer wait', function() timer:wait() end },
  { 'subprocess wait', function() child:wait() end },
  { 'signal set wait', function() set:wait() end },
}
for _, op in ipairs(ops) do
  local f = spawn(function()
    local ok, e = pcall(op[2])
    print(op[1], ok, tostring(e))
  end)
  this_fiber.yield()
  f:interrupt()
  f:join()
end

-- the objects still work afterwards
w:write_some('x')
local buf = byte_span.new(8)
print('pipe after:', r:read_some(buf))
child:kill(system.signal.SIGKILL)
child:wait()
print('child after:', child.exit_signal)
system.signal.raise(system.signal.SIGUSR1)
print('set after:', set:wait())
