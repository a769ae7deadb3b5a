-- spawn_vm{ subprocess = {...} } runs the module in the same sandbox as
-- `sandbox = {}`: a worker (_CONTEXT 'worker', empty system.arguments)
-- whose environment is exactly `environment`, whose standard streams are
-- 'share' (this process's), a file_descriptor, or /dev/null (nil). The
-- namespace flags are accepted (every namespace is made anyway). Its exit
-- code reaches the monitor.
local inbox = require 'inbox'
local pipe = require 'pipe'
local stream = require 'stream'

-- Everything shared, an environment, every namespace flag.
local ch = spawn_vm{ module = '/fixtures/report', monitor = true, subprocess = {
  newns_uts = true, newns_ipc = true, newns_pid = true, newns_user = true,
  newns_net = true, newns_mount = false,
  environment = { GREETING = 'hello', EMPTY = '' },
  stdin = 'share', stdout = 'share', stderr = 'share' } }
local kind, pid_type, pid_ok = getmetatable(ch), type(ch.child_pid), ch.child_pid > 1
ch:send{ reply = inbox, code = 3 }
local r = inbox:receive()
local notice = inbox:receive()
-- (printed once the sandbox ended: its own line is out already)
print(kind, pid_type, pid_ok)
print(r.context, r.nargs, r.greeting, r.empty, r.path)
print('stdin:', r.stdin)
print(notice.monitor, notice.reason, notice.code)

-- No environment, stdout and stderr not given: /dev/null (its print and
-- its error report are not seen here).
ch = spawn_vm{ module = '/fixtures/report', monitor = true, subprocess = {} }
ch:send{ reply = inbox, fail = true }
r = inbox:receive()
print(r.context, r.greeting, r.path)
notice = inbox:receive()
print(notice.reason, notice.code)

-- stdout given as a file_descriptor (the write end of a pipe): what the
-- sandbox prints comes out of the read end.
local rd, wr = pipe.pair()
local wfd = wr:release()
ch = spawn_vm{ module = '/fixtures/report', monitor = true,
  subprocess = { stdout = wfd } }
wfd:close() -- the sandbox has its own copy
ch:send{ reply = inbox }
inbox:receive()
print(inbox:receive().reason)
local buf = byte_span.new(100)
local got = ''
while true do
  local ok, n = pcall(rd.read_some, rd, buf)
  if not ok then break end
  got = got .. tostring(buf:slice(1, n))
end
print('through the pipe:', got)
