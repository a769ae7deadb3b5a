-- process identity and credentials: values agree with what a child sees
-- and with each other; errors are the system call's errno, wrong types
-- EINVAL naming the argument
local system = require 'system'
local pipe = require 'pipe'

local function child_says(script)
  local r, w = pipe.pair()
  local wfd = w:release()
  local p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', script }, stdout = wfd }
  wfd:close()
  local buf = byte_span.new(256)
  local n = r:read_some(buf)
  p:wait()
  return tostring(buf:slice(1, n)):gsub('\n$', ''), p
end
local function err(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'no error' end
  return tostring(e.category) .. ' ' .. tostring(e) .. (e.arg and (' arg ' .. e.arg) or '')
end

print('getpid is the parent of our children:', child_says('echo $PPID') == tostring(system.getpid()))
local said, p = child_says('echo $$')
print('a child\'s pid:', said == tostring(p.pid))
print('getppid:', type(system.getppid()), system.getppid() ~= system.getpid())
print('getpgrp = getpgid():', system.getpgrp() == system.getpgid(), system.getpgid() == system.getpgid(0),
      system.getpgid(system.getpid()) == system.getpgrp())
print('getsid:', system.getsid() == system.getsid(0), system.getsid(system.getpid()) == system.getsid())
print('getpgid of nobody:', err(system.getpgid, 2147483647))
print('getsid of nobody:', err(system.getsid, 2147483647))
print('getpgid type:', err(system.getpgid, 'x'))

-- setpgid: a child that already ran execve cannot be moved (EACCES)
p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
print('setpgid exec\'d child:', err(system.setpgid, p.pid, p.pid))
p:kill(system.signal.SIGKILL)
p:wait()
print('setpgid bad pgid:', err(system.setpgid, 0, -1))
print('setpgid type:', err(system.setpgid, 0, 'x'))
-- lead our own group, after which setsid is refused
system.setpgid(0, 0)
print('group leader:', system.getpgrp() == system.getpid())
print('setsid as group leader:', err(system.setsid))

local r, e, s = system.getresuid()
local r0, e0, s0 = r, e, s
print('getresuid:', type(r), type(e), type(s))
r, e, s = system.getresgid()
print('getresgid:', type(r), type(e), type(s))
-- -1 leaves an id as it is
system.setresuid(-1, -1, -1)
system.setresgid(-1, -1, -1)
print('after -1:', select('#', system.getresuid()))
-- setting the ids one already has is always allowed
system.setresuid(system.getresuid())
system.setresgid(system.getresgid())
print('same ids:', table.concat({ system.getresuid() }, ' ') == table.concat({ r0, e0, s0 }, ' '))
print('setresuid type:', err(system.setresuid, 'x', -1, -1))
print('setresgid range:', err(system.setresgid, -1, -1, 2^40))
local groups = system.getgroups()
print('getgroups:', type(groups))
print('setgroups type:', err(system.setgroups, 'x'))
print('setgroups member:', err(system.setgroups, { 'x' }))
print('kill types:', err(system.kill, 'x', 0), err(system.kill, 1, 'x'))
print('kill bad signal:', err(system.kill, system.getpid(), 1000))
