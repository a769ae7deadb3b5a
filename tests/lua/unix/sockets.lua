-- unix sockets: pair() of each type, acceptors over a path and an
-- abstract name, datagrams with sender paths, EOF, message boundaries
-- -- args: (none)
local unix = require 'unix'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local buf = byte_span.new(16)

-- stream pair: bytes, shutdown, EOF
local a, b = unix.stream_socket.pair()
print('stream pair:', getmetatable(a), a.is_open, b.is_open)
a:write_some('abc')
print('read:', tostring(buf:slice(1, b:read_some(buf))))
a:send('def')
print('receive:', tostring(buf:slice(1, b:receive(buf))))
a:shutdown('send')
print('EOF:', try(b.read_some, b, buf))
a:close() b:close()

-- seqpacket pair keeps message boundaries
local p, q = unix.seqpacket_socket.pair()
p:send('one') p:send('two!')
print('packets:', q:receive(buf), q:receive(buf))
p:close()
print('seqpacket after peer closed:', q:receive(buf))

-- datagram pair
local d1, d2 = unix.datagram_socket.pair()
d1:send('dgram')
local n, from = d2:receive_from(buf)
print('datagram pair:', tostring(buf:slice(1, n)), from)

-- an acceptor on an abstract name (nothing in the file system)
local name = '\0luring-test-' .. tostring({}):sub(8)
local acc = unix.stream_acceptor.new()
acc:open()
acc:bind(name)
acc:listen()
print('abstract local_path is the name:', acc.local_path == name)
local f = spawn(function()
  local s = acc:accept()
  local m = s:read_some(buf)
  s:write_some(buf:slice(1, m))
  return getmetatable(s), ('%q'):format(s.remote_path)
end)
local c = unix.stream_socket.new()
c:connect(name)
c:write_some('echo me')
print('echo:', tostring(buf:slice(1, c:read_some(buf))))
print('server:', f:join())
print('client remote_path:', c.remote_path == name)
acc:close() c:close()

-- seqpacket acceptor
local sacc = unix.seqpacket_acceptor.new()
sacc:open()
sacc:bind(name .. 's')
sacc:listen()
f = spawn(function() return sacc:accept():receive(buf) end)
local sc = unix.seqpacket_socket.new()
sc:connect(name .. 's')
sc:send('12345')
print('seqpacket accepted, received:', f:join())

-- datagram sockets bound to abstract names: send_to and sender path
local x, y = unix.datagram_socket.new(), unix.datagram_socket.new()
x:open() x:bind(name .. 'x')
y:open() y:bind(name .. 'y')
y:send_to('to x', name .. 'x')
n, from = x:receive_from(buf)
print('datagram from:', tostring(buf:slice(1, n)), from == name .. 'y')
y:connect(name .. 'x')
y:send('connected')
print('receive:', tostring(buf:slice(1, x:receive(buf))))
y:disconnect()
print('send after disconnect:', try(y.send, y, 'x'))

-- errors
print('connect nobody:', try(unix.stream_socket.new().connect, unix.stream_socket.new(), name .. 'none'))
local busy = unix.stream_acceptor.new()
busy:open()
busy:bind(name .. 'b')
local again = unix.stream_acceptor.new()
again:open()
print('in use:', try(again.bind, again, name .. 'b'))
print('too long:', try(again.bind, again, ('x'):rep(200)))
print('NUL in path:', try(again.bind, again, 'a\0b'))
print('empty path:', try(again.bind, again, ''))
print('path number:', try(again.bind, again, 3))
-- only real filesystem.path objects pass as paths: a table that claims the
-- class is refused, its __tostring never called
local forged = setmetatable({}, { __metatable = 'filesystem.path',
  __tostring = function() print('forged __tostring called') return name .. 'forged' end })
print('forged path:', try(again.bind, again, forged))
local fs = require 'filesystem'
local fspath = fs.temp_directory_path() / ('luring-unix-' .. tostring({}):sub(8))
local fsock = unix.datagram_socket.new()
fsock:open()
print('filesystem.path:', try(fsock.bind, fsock, fspath))
print('bound to it:', fsock.local_path == tostring(fspath))
fsock:close()
print('removed:', fs.remove(fspath))
print('bind closed:', try(unix.stream_acceptor.new().bind, unix.stream_acceptor.new(), name))
print('open twice:', try(again.open, again))
print('accept unlistened:', try(again.accept, again))
print('read_some on seqpacket:', try(function() return q.read_some end))
print('stream method on datagram:', try(c.read_some, d1, buf))
print('receive_from on stream:', try(function() return c.receive_from end))

-- pending ops: accept and connect (on a full backlog) interrupted and
-- closed under them
local function outcome(label, fn, ...)
  local ok, e = pcall(fn, ...)
  print(label, ok and 'ok' or (tostring(e.category) .. ': ' .. tostring(e)))
end
local full = unix.stream_acceptor.new()
full:open()
full:bind(name .. 'full')
full:listen(0)
f = spawn(function() outcome('accept interrupted:', full.accept, full) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() outcome('accept cancelled:', full.accept, full) end)
this_fiber.yield()
full:cancel()
f:join()
local first = unix.stream_socket.new()
first:connect(name .. 'full')
-- the backlog is full: connect does not wait (a kernel wait for room
-- could not be cancelled), it raises EAGAIN
local waiting = unix.stream_socket.new()
outcome('connect on a full backlog:', waiting.connect, waiting, name .. 'full')
print('the queued one is accepted:', getmetatable(full:accept()))
outcome('connect again:', waiting.connect, waiting, name .. 'full')

-- a datagram send_to a full receiver waits (on a kernel worker): it is
-- interrupted, and aborted by close()
local receiver = unix.datagram_socket.new()
receiver:open()
receiver:bind(name .. 'rcv')
local sender = unix.datagram_socket.new()
sender:open()
local function flood()
  while true do sender:send_to('x', name .. 'rcv') end
end
f = spawn(function() outcome('send_to interrupted:', flood) end)
for _ = 1, 20 do this_fiber.yield() end
f:interrupt()
f:join()
f = spawn(function() outcome('send_to closed under it:', flood) end)
for _ = 1, 5 do this_fiber.yield() end
sender:close()
f:join()

-- acceptors queue connections (multishot accept) until accept() takes
-- them, in order
local macc = unix.seqpacket_acceptor.new()
macc:open()
macc:bind(name .. 'multi')
macc:listen()
f = spawn(function() return macc:accept() end)
local m0 = unix.seqpacket_socket.new()
m0:connect(name .. 'multi')
f:join()
for i = 1, 3 do
  local m = unix.seqpacket_socket.new()
  m:connect(name .. 'multi')
  m:send('conn ' .. i)
end
local got = {}
for i = 1, 3 do
  local s = macc:accept()
  got[i] = tostring(buf:slice(1, s:receive(buf)))
end
print('queued unix connections:', table.concat(got, ', '))
print('release armed:', try(macc.release, macc))
macc:close()
