-- spawn errors: the program cannot start (ENOENT, EACCES, bad working
-- directory) and bad options (EINVAL naming the option, ENOTSUP for what
-- luring does not implement)
local system = require 'system'
local function try(label, opts)
  local ok, e = pcall(system.spawn, opts)
  print(label, ok, ok and '' or tostring(e.category), ok and '' or tostring(e), ok and '' or tostring(e.arg))
end
try('missing program', { program = '/nonexistent/program' })
try('not executable', { program = '/etc/passwd' })
try('directory', { program = '/' })
-- failures in the child after the fork, before exec, are reported too
try('group that cannot exist', { program = '/bin/true', process_group = 2147483647 })
try('bad cwd', { program = '/bin/true', working_directory = '/nonexistent' })
try('not a table', 'ls')
try('program type', { program = 42 })
try('NUL in program', { program = '/bin/true\0x' })
try('arguments type', { program = '/bin/true', arguments = 'x' })
try('argument type', { program = '/bin/true', arguments = { 'a', 2 } })
try('environment', { program = '/bin/true', environment = { A = 1 } })
try('environment =', { program = '/bin/true', environment = { ['A=B'] = 'c' } })
try('stdin mode', { program = '/bin/true', stdin = 'inherit' })
try('stdout type', { program = '/bin/true', stdout = 1 })
try('extra fd 10', { program = '/bin/true', extra_fds = { [10] = 1 } })
try('extra fd type', { program = '/bin/true', extra_fds = { [3] = 'x' } })
try('umask', { program = '/bin/true', umask = 1000 })
try('session type', { program = '/bin/true', start_new_session = 1 })
try('group and session', { program = '/bin/true', start_new_session = true, process_group = 0 })
try('pdeathsig', { program = '/bin/true', pdeathsig = 0 })
try('gc signal', { program = '/bin/true', signal_on_gcreaper = -1 })
try('unsupported', { program = '/bin/true', ruid = 0 })
-- a file_descriptor that was handed on (emptied) is EBUSY
local pipe = require 'pipe'
local r, w = pipe.pair()
local fd = w:release()
pipe.write_stream.new(fd)
try('emptied fd', { program = '/bin/true', stdout = fd })
