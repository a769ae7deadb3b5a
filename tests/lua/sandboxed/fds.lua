-- File descriptors sent to a sandboxed actor arrive as file_descriptors
-- backed by slots of its ring's table, and I/O objects built on them work
-- there: pipe streams, a unix stream socket, file.stream and
-- file.random_access on a read-only file. Sending copies the capability:
-- the sender keeps its own.
local inbox = require 'inbox'
local pipe = require 'pipe'
local file = require 'file'
local unix = require 'unix'
local fs = require 'filesystem'
local ch = spawn_vm{ module = '/fixtures/fd_user', sandbox = {} }

local function show(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. '=' .. tostring(t[k]) end
  return table.concat(out, ' ')
end

-- a pipe each way
local to_r, to_w = pipe.pair()
local from_r, from_w = pipe.pair()
local input, output = to_r:release(), from_w:release()
to_w:write_some('hello')
ch:send{ op = 'pipe', input = input, output = output, reply = inbox }
print('pipe:', show(inbox:receive()))
print('sender kept its copies:', tostring(input) ~= '/dev/fd/-1', tostring(output) ~= '/dev/fd/-1')
input:close()
output:close()
local buf = byte_span.new(64)
print('host read:', tostring(buf:slice(1, from_r:read_some(buf))))

-- a read-only file, twice (a stream and a random_access)
local dir = fs.temp_directory_path() / ('luring-sbx-fds-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local w = file.stream.new()
w:open(dir / 'data', bit.bor(file.open_flag.write_only, file.open_flag.create))
w:write_some('first second')
w:close()
local r1, r2 = file.stream.new(), file.stream.new()
r1:open(dir / 'data', file.open_flag.read_only)
r2:open(dir / 'data', file.open_flag.read_only)
ch:send{ op = 'file', stream = r1:release(), random = r2:release(), reply = inbox }
print('file:', show(inbox:receive()))
fs.remove_all(dir)

-- one end of a unix stream socket pair
local a, b = unix.stream_socket.pair()
ch:send{ op = 'unix', socket = b:release(), reply = inbox }
a:write_some('ping')
print('unix:', tostring(buf:slice(1, a:read_some(buf))))
print('unix reply:', show(inbox:receive()))

-- and back: a descriptor the sandbox holds travels to the host by
-- SCM_RIGHTS and arrives as a file_descriptor of the host
local back_r, back_w = pipe.pair()
local spare_r, spare_w = pipe.pair()
ch:send{ op = 'give_back', fd = back_w:release(), dead = spare_w:release(), reply = inbox }
local got = inbox:receive()
print('returned:', getmetatable(got.back), tostring(got.span))
print('sandbox wrote:', tostring(buf:slice(1, back_r:read_some(buf))))
local again = pipe.write_stream.new(got.back)
again:write_some('and so does the host')
print('host wrote:', tostring(buf:slice(1, back_r:read_some(buf))))
print('a closed one:', show(inbox:receive()))
ch:close()
