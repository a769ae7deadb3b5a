-- ip.tcp.socket:send_file over loopback: whole files, offsets, small
-- splices, head and tail, the end of the file before n, interruption,
-- close()/cancel() under it, every bad argument, and no fd left behind
local ip = require 'ip'
local file = require 'file'
local fs = require 'filesystem'
local stream = require 'stream'
local F = file.open_flag

local function report(label, ok, e, ...)
  if ok then print(label, 'ok', e, ...) return end
  if type(e) ~= 'table' then print(label, 'error: ' .. tostring(e)) return end
  print(label, tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or ''))
end

local dir = fs.temp_directory_path() / ('luring-send-file-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)

-- Open fds, without eventfds (see tests/lua/file/pending.lua).
local function fds()
  local n = 0
  for e in fs.directory_iterator('/proc/self/fd') do
    local ok, target = pcall(fs.read_symlink, e.path)
    if ok and tostring(target) ~= 'anon_inode:[eventfd]' then n = n + 1 end
  end
  return n
end

-- A file of `size` bytes: byte i is (i * 7) % 251.
local function make_file(name, size)
  local bytes = {}
  for i = 0, size - 1 do bytes[#bytes + 1] = string.char((i * 7) % 251) end
  local content = table.concat(bytes)
  local w = file.stream.new()
  w:open(dir / name, bit.bor(F.write_only, F.create, F.truncate))
  stream.write_all(w, content)
  w:close()
  local f = file.random_access.new()
  f:open(dir / name, F.read_only)
  return f, content
end

local acc = ip.tcp.acceptor.new()
acc:open('v4')
acc:bind('127.0.0.1', 0)
acc:listen()

-- A connected pair: client, server side.
local function pair()
  local c = ip.tcp.socket.new()
  local accepted = spawn(function() return acc:accept() end)
  c:connect('127.0.0.1', acc.local_port)
  return c, accepted:join()
end

-- Reads everything until EOF.
local function drain(s)
  local parts, buf = {}, byte_span.new(65536)
  while true do
    local ok, n = pcall(s.read_some, s, buf)
    if not ok then break end
    parts[#parts + 1] = tostring(buf:slice(1, n))
  end
  return table.concat(parts)
end

local before = fds()
local big, big_content = make_file('big', 300000)
local small, small_content = make_file('small', 1000)

local function transfer(label, ...)
  local c, s = pair()
  local args = { ... }
  local reader = spawn(function() return drain(s) end)
  local ok, n = pcall(c.send_file, c, unpack(args))
  c:close()
  local got = reader:join()
  s:close()
  return ok, n, got
end

local ok, n, got = transfer('whole', big, 0, 300000)
print('whole file:', ok, n, #got, got == big_content)
ok, n, got = transfer('offset', big, 12345, 100000)
print('offset and n:', ok, n, got == big_content:sub(12346, 112345))
ok, n, got = transfer('small splices', small, 10, 990, 97)
print('97-byte splices:', ok, n, got == small_content:sub(11))
ok, n, got = transfer('head and tail', small, 0, 5, nil, 'HEAD:', byte_span.append(':TAIL'))
print('head and tail:', ok, n, got == 'HEAD:' .. small_content:sub(1, 5) .. ':TAIL')
ok, n, got = transfer('past eof', small, 900, 500, nil, 'H', 'T')
print('end of file before n:', ok, n, got == 'H' .. small_content:sub(901), '(no tail)')
ok, n, got = transfer('at eof', small, 1000, 10)
print('offset at the end:', ok, n, #got)
ok, n, got = transfer('beyond eof', small, 5000, 10)
print('offset beyond the end:', ok, n, #got)
ok, n, got = transfer('nothing', small, 0, 0)
print('n = 0:', ok, n, #got)

-- a file.stream works too; its position is neither used nor moved
local fstream = file.stream.new()
fstream:open(dir / 'small', F.read_only)
fstream:seek(100)
ok, n, got = transfer('stream', fstream, 0, 10)
print('file.stream:', ok, n, got == small_content:sub(1, 10), fstream:seek(0, 'cur'))
fstream:close()

-- bad arguments
local c, s = pair()
local r, w = (require 'pipe').pair()
report('not a file (pipe):', pcall(c.send_file, c, r, 0, 1))
report('not a file (string):', pcall(c.send_file, c, 'big', 0, 1))
report('no file:', pcall(c.send_file, c, nil, 0, 1))
report('negative offset:', pcall(c.send_file, c, small, -1, 1))
report('fractional offset:', pcall(c.send_file, c, small, 0.5, 1))
report('no n:', pcall(c.send_file, c, small, 0))
report('negative n:', pcall(c.send_file, c, small, 0, -1))
report('huge n:', pcall(c.send_file, c, small, 0, 2 ^ 60))
report('n_per_send 0:', pcall(c.send_file, c, small, 0, 1, 0))
report('n_per_send string:', pcall(c.send_file, c, small, 0, 1, '1'))
report('head a number:', pcall(c.send_file, c, small, 0, 1, nil, 5))
report('tail a table:', pcall(c.send_file, c, small, 0, 1, nil, nil, {}))
report('not a socket:', pcall(c.send_file, acc, small, 0, 1))
local closed = file.random_access.new()
report('unopened file:', pcall(c.send_file, c, closed, 0, 1))
closed:open(dir / 'small', F.read_only)
closed:close()
report('closed file:', pcall(c.send_file, c, closed, 0, 1))
local wo = file.random_access.new()
wo:open(dir / 'small', F.write_only)
report('write-only file:', pcall(c.send_file, c, wo, 0, 1))
wo:close()
local d = file.random_access.new()
d:open(dir, F.read_only)
report('a directory:', pcall(c.send_file, c, d, 0, 1))
d:close()
r:close() w:close()
c:close() s:close()
report('closed socket:', pcall(c.send_file, c, small, 0, 1))
local unconnected = ip.tcp.socket.new()
unconnected:open('v4')
report('unconnected socket:', pcall(unconnected.send_file, unconnected, small, 0, 1))
unconnected:close()

-- A peer that reads nothing: the transfer waits in the socket's splice.
-- Small buffers make it wait early; the reader takes one chunk first to
-- see that the transfer is under way.
local function stuck(label, act)
  local c, s = pair()
  c:set_option('send_buffer_size', 4096)
  s:set_option('receive_buffer_size', 4096)
  local sender = spawn(function() return pcall(c.send_file, c, big, 0, 300000) end)
  local buf = byte_span.new(100)
  stream.read_all(s, buf)
  print(label, 'first bytes arrived:', tostring(buf) == big_content:sub(1, 100))
  act(sender, c)
  report(label, sender:join())
  print(label, 'socket open:', c.is_open, 'file open:', big.is_open)
  c:close()
  s:close()
end
-- the per-call pipe is closed by the call itself, not left to the
-- collector: no fd more right after an interrupted transfer
collectgarbage()
local fds_before_stuck = fds()
stuck('interrupted:', function(sender) sender:interrupt() end)
print('no fd more after an interrupted send_file:', fds() == fds_before_stuck)
stuck('socket closed:', function(_, c) c:close() end)
stuck('socket cancelled:', function(_, c) c:cancel() end)
stuck('release meanwhile:', function(sender, c)
  report('release meanwhile: socket release ->', pcall(c.release, c))
  report('release meanwhile: file release ->', pcall(big.release, big))
  sender:interrupt()
end)
stuck('file cancelled:', function() big:cancel() end)
stuck('file closed:', function() big:close() end)

big:close()
small:close()
collectgarbage()
collectgarbage()
print('fds as before:', fds() == before)
print('removed:', fs.remove_all(dir))
acc:close()
