-- send_with_fds / receive_with_fds: fds arrive as usable file_descriptor
-- objects; more fds than maxfds (MSG_CTRUNC) closes those that came and
-- raises EMSGSIZE; pending receives interrupted and closed under
local unix = require 'unix'
local pipe = require 'pipe'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
    .. (e.bytes and (' (bytes ' .. e.bytes .. ')') or '')
end
local buf = byte_span.new(16)
local a, b = unix.stream_socket.pair()

-- a pipe's write end travels; the receiver writes into it
local r, w = pipe.pair()
local wfd = w:release()
print('sent:', a:send_with_fds('fd!', { wfd }))
print('sender keeps its object:', tostring(wfd) ~= '/dev/fd/-1')
wfd:close()
local n, fds = b:receive_with_fds(buf, 4)
print('received:', tostring(buf:slice(1, n)), #fds, getmetatable(fds[1]))
local w2 = pipe.write_stream.new(fds[1])
w2:write_some('through the passed fd')
local rbuf = byte_span.new(64)
print('pipe got:', tostring(rbuf:slice(1, r:read_some(rbuf))))

-- several fds in one message; data without fds gives an empty list
local p1, p2 = pipe.pair()
local f1, f2 = p1:release(), p2:release()
a:send_with_fds('two', { f1, f2 })
n, fds = b:receive_with_fds(buf, 2)
print('two fds:', n, #fds)
a:write_some('plain')
n, fds = b:receive_with_fds(buf, 2)
print('no fds:', tostring(buf:slice(1, n)), #fds)

-- more fds than maxfds: MSG_CTRUNC -> EMSGSIZE, the data is in buf
a:send_with_fds('many', { f1, f2, f1 })
print('truncated:', try(b.receive_with_fds, b, buf, 1))
print('data that came:', tostring(buf:slice(1, 4)))
-- two fds fit in the padding of room for one: still more than asked for
a:send_with_fds('pad', { f1, f2 })
print('two for maxfds 1:', try(b.receive_with_fds, b, buf, 1))
a:send_with_fds('zero', { f1 })
print('maxfds 0:', try(b.receive_with_fds, b, buf, 0))

-- seqpacket and datagram carry fds too
local s1, s2 = unix.seqpacket_socket.pair()
s1:send_with_fds('pkt', { f2 })
n, fds = s2:receive_with_fds(buf, 1)
print('seqpacket:', n, #fds)
local d1, d2 = unix.datagram_socket.pair()
d1:send_with_fds('dg', { f2 })
local from
n, from, fds = d2:receive_from_with_fds(buf, 1)
print('datagram:', n, from, #fds)

-- bad arguments
print('fds not a table:', try(a.send_with_fds, a, 'x', f1))
print('fds holds a string:', try(a.send_with_fds, a, 'x', { 'nope' }))
local spent = f1:dup()
spent:close()
print('fds holds a closed fd:', try(a.send_with_fds, a, 'x', { spent }))
local too_many = {}
for i = 1, 254 do too_many[i] = f2 end
print('254 fds:', try(a.send_with_fds, a, 'x', too_many))
print('maxfds negative:', try(b.receive_with_fds, b, buf, -1))
print('maxfds 254:', try(b.receive_with_fds, b, buf, 254))
print('maxfds string:', try(b.receive_with_fds, b, buf, 'x'))
print('buffer string:', try(b.receive_with_fds, b, 'x', 1))

-- pending receive_with_fds: interrupted, then closed under it
local f = spawn(function() print('interrupted:', try(b.receive_with_fds, b, buf, 2)) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() print('closed under it:', try(b.receive_with_fds, b, buf, 2)) end)
this_fiber.yield()
b:close()
f:join()
a:shutdown('both')
print('read after own shutdown:', try(a.read_some, a, buf))
