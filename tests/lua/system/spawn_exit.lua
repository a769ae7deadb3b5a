-- exit codes, death by a signal, kill(), and the errors around them
local system = require 'system'
local S = system.signal

for _, code in ipairs{ 0, 1, 42, 255 } do
  local p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'exit ' .. code } }
  p:wait()
  print('exit', code, '->', p.exit_code, p.exit_signal)
end

-- the child kills itself: exit_signal is set, exit_code is 128 + signal
local p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'kill -TERM $$' } }
p:wait()
print('self-killed:', p.exit_code, p.exit_signal)

-- kill() through the pidfd
p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '100' } }
local ok, e = pcall(function() return p.exit_code end)
print('exit_code before wait:', ok, tostring(e))
p:kill(S.SIGKILL)
p:wait()
print('killed:', p.exit_code, p.exit_signal)
-- waiting again returns at once; the process is gone for kill
p:wait()
ok, e = pcall(p.kill, p, S.SIGTERM)
print('kill after wait:', ok, tostring(e))
ok, e = pcall(p.kill, p, 'TERM')
print('kill bad signal:', ok, tostring(e))

-- system.kill by pid, signal 0 probes
p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '100' } }
print('kill 0:', pcall(system.kill, p.pid, 0))
system.kill(p.pid, S.SIGTERM)
p:wait()
print('system.kill:', p.exit_signal == S.SIGTERM)
ok, e = pcall(system.kill, p.pid, 0)
print('kill reaped pid:', ok, tostring(e))
