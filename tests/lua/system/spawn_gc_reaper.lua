-- a collected subprocess handle whose child still runs: the child gets
-- signal_on_gcreaper (default SIGTERM) and is reaped in the background,
-- leaving no zombie (kill(pid, 0) succeeds on a zombie, ESRCH once reaped)
local system = require 'system'
local time = require 'time'

local function gone(pid)
  local deadline = time.steady_clock.now() + 30  -- generous
  while time.steady_clock.now() < deadline do
    local ok, e = pcall(system.kill, pid, 0)
    if not ok then return tostring(e) end
    time.sleep(0.01)
  end
  return 'still there'
end

local p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
local pid = p.pid
p = nil
collectgarbage()
collectgarbage()
print('default SIGTERM:', gone(pid))

-- a child that ignores SIGTERM: signal_on_gcreaper = SIGKILL still ends it
p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'trap "" TERM; exec sleep 1000' },
                  signal_on_gcreaper = system.signal.SIGKILL }
pid = p.pid
p = nil
collectgarbage()
collectgarbage()
print('SIGKILL:', gone(pid))

-- a child that already exited when its handle is collected is reaped too
p = system.spawn{ program = '/bin/true' }
pid = p.pid
p = nil
collectgarbage()
collectgarbage()
print('exited child:', gone(pid))

-- signal_on_gcreaper = 0: no signal; the child is reaped when it exits
local pipe = require 'pipe'
local r, w = pipe.pair()
local rfd = r:release()
p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'read x' }, stdin = rfd,
                  signal_on_gcreaper = 0 }
rfd:close()
pid = p.pid
p = nil
collectgarbage()
collectgarbage()
print('still running:', pcall(system.kill, pid, 0))
w:write_some('go\n')
print('after it exits:', gone(pid))
