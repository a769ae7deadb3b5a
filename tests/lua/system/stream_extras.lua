-- stdin: hello
-- the standard streams' dup(), tcgetpgrp() and tcsetpgrp() (no terminal
-- here: ENOTTY)
local system = require 'system'
local pipe = require 'pipe'
local fd = system.in_:dup()
print(getmetatable(fd))
local r = pipe.read_stream.new(fd)
local buf = byte_span.new(16)
print('read through the dup:', tostring(buf:slice(1, r:read_some(buf))))
print('out dup:', getmetatable(system.out:dup()), getmetatable(system.err:dup()))
for _, name in ipairs{ 'in_', 'out', 'err' } do
  local s = system[name]
  local ok, e = pcall(s.tcgetpgrp, s)
  print(name .. ':tcgetpgrp', ok, tostring(e))
  ok, e = pcall(s.tcsetpgrp, s, system.getpgrp())
  print(name .. ':tcsetpgrp', ok, tostring(e))
end
print('tcsetpgrp type:', pcall(system.out.tcsetpgrp, system.out, 'x'))
