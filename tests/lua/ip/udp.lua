-- ip.udp.socket over loopback: send_to/receive_from, connect/send/receive,
-- disconnect, empty datagrams, truncation, errors
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
for _, family in ipairs{ 'v4', 'v6' } do
  local lo = family == 'v4' and ip.address.loopback_v4() or ip.address.loopback_v6()
  local a, b = ip.udp.socket.new(), ip.udp.socket.new()
  a:open(family) a:bind(lo, 0)
  b:open(family) b:bind(lo, 0)
  local buf = byte_span.new(16)
  print(family, 'send_to:', b:send_to('hello', a.local_address, a.local_port))
  local n, from, port = a:receive_from(buf)
  print(family, 'receive_from:', n, tostring(buf:slice(1, n)), from, port == b.local_port)
  -- an empty datagram is 0 bytes, not EOF
  b:send_to('', lo, a.local_port)
  print(family, 'empty datagram:', a:receive_from(buf) == 0)
  -- a datagram longer than the buffer is truncated to it
  b:send_to(('z'):rep(40), lo, a.local_port)
  print(family, 'truncated:', a:receive(buf))
  -- connected: send/receive use the default peer
  b:connect(lo, a.local_port)
  print(family, 'remote port:', b.remote_port == a.local_port)
  b:send(byte_span.append('via connect'))
  n = a:receive(buf)
  print(family, 'receive:', tostring(buf:slice(1, n)))
  b:disconnect()
  print(family, 'send after disconnect:', try(b.send, b, 'x'))
  a:close() b:close()
end
local u = ip.udp.socket.new()
u:open('v4')
u:set_option('broadcast', true)
print('broadcast:', u:get_option('broadcast'))
print('send_to bad address:', try(u.send_to, u, 'x', 'nope', 1))
print('send_to bad port:', try(u.send_to, u, 'x', '127.0.0.1', 'p'))
print('send_to wrong family:', try(u.send_to, u, 'x', '::1', 9))
print('receive_from string:', try(u.receive_from, u, 'x'))
print('connect bad address:', try(u.connect, u, '::g', 1))
local closed = ip.udp.socket.new()
print('send_to closed:', try(closed.send_to, closed, 'x', '127.0.0.1', 9))
print('disconnect closed:', try(closed.disconnect, closed))
-- connect opens a closed socket
closed:connect('127.0.0.1', 9)
print('connect opened it:', closed.is_open, closed.remote_port)
