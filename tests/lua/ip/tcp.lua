-- ip.tcp over loopback (v4 and v6): accept, connect, read/write, receive/
-- send with flags, shutdown and EOF, endpoints, options
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end

local function round_trip(loopback, family)
  local acc = ip.tcp.acceptor.new()
  print(family, 'acceptor open before:', acc.is_open)
  acc:open(family)
  acc:set_option('reuse_address', true)
  acc:bind(loopback, 0)
  acc:listen(16)
  print(family, 'listening on', acc.local_address, acc.local_port > 0)
  local server = spawn(function()
    local s = acc:accept()
    local seen = { getmetatable(s), tostring(s.local_address), tostring(s.local_port == acc.local_port),
      tostring(s.remote_address) }
    local buf = byte_span.new(64)
    local total = 0
    while true do
      local ok, n = pcall(s.read_some, s, buf)
      if not ok then seen[#seen + 1] = tostring(n) break end
      total = total + n
      s:write_some(buf:slice(1, n))
    end
    s:close()
    return total, table.concat(seen, ' ')
  end)
  local c = ip.tcp.socket.new()
  c:connect(ip.address.new(loopback), acc.local_port)
  print(family, 'client remote port matches:', c.remote_port == acc.local_port,
    c.local_address == ip.address.new(loopback))
  local buf = byte_span.new(64)
  c:write_some('ping')
  local n = c:read_some(buf)
  print(family, 'echo:', tostring(buf:slice(1, n)))
  c:send(byte_span.append('abc'), 0)
  n = c:receive(buf, ip.message_flag.peek)
  print(family, 'peeked:', n)
  n = c:receive(buf)
  print(family, 'received:', tostring(buf:slice(1, n)))
  c:shutdown('send')
  print(family, 'server total, saw:', server:join())
  print(family, 'client at EOF:', try(c.read_some, c, buf))
  print(family, 'zero-length read at EOF:', c:read_some(byte_span.new(0)))
  c:close()
  acc:close()
  print(family, 'closed:', c.is_open, acc.is_open)
end
round_trip('127.0.0.1', 'v4')
round_trip('::1', 'v6')

-- options
local s = ip.tcp.socket.new()
s:open('v4')
s:set_option('tcp_no_delay', true)
s:set_option('keep_alive', true)
s:set_option('linger', true, 5)
s:set_option('send_buffer_size', 65536)
print('tcp_no_delay:', s:get_option('tcp_no_delay'))
print('keep_alive:', s:get_option('keep_alive'))
print('linger:', s:get_option('linger'))
print('send_buffer_size >= 65536:', s:get_option('send_buffer_size') >= 65536)
s:set_option('linger', false)
print('linger off:', s:get_option('linger'))
local v6 = ip.tcp.socket.new()
v6:open(ip.address.loopback_v6())
v6:set_option('v6_only', true)
v6:set_option('unicast_hops', 7)
print('v6 options:', v6:get_option('v6_only'), v6:get_option('unicast_hops'))
-- connect opens a closed socket for the address's family
local acc = ip.tcp.acceptor.new()
acc:open('v6')
acc:bind('::1', 0)
acc:listen()
local f = spawn(function() return acc:accept().remote_address end)
local c = ip.tcp.socket.new()
c:connect('::1', acc.local_port)
print('auto-opened:', c.is_open, f:join())
-- release gives the descriptor; new(fd) adopts it
local fd = c:release()
print('released:', c.is_open, getmetatable(fd))
local c2 = ip.tcp.socket.new(fd)
print('adopted:', c2.is_open, c2.remote_address)
