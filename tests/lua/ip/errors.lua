-- error paths of ip sockets: refused, address in use, broken pipe, reset,
-- bad arguments, closed objects, wrong classes
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local function listener()
  local acc = ip.tcp.acceptor.new()
  acc:open('v4')
  acc:bind('127.0.0.1', 0)
  acc:listen()
  return acc
end

-- a bound port nobody listens on refuses connections
local bound = ip.tcp.socket.new()
bound:open('v4')
bound:bind('127.0.0.1', 0)
local c = ip.tcp.socket.new()
print('refused:', try(c.connect, c, '127.0.0.1', bound.local_port))

-- the port of a listening acceptor is in use
local acc = listener()
local other = ip.tcp.acceptor.new()
other:open('v4')
print('in use:', try(other.bind, other, '127.0.0.1', acc.local_port))
print('bad family for address:', try(other.bind, other, '::1', 0))

-- the peer closed: writing ends in EPIPE (or ECONNRESET once the RST came)
local f = spawn(function() acc:accept():close() end)
local w = ip.tcp.socket.new()
w:connect('127.0.0.1', acc.local_port)
f:join()
local err
for _ = 1, 100 do
  local ok, e = pcall(w.write_some, w, ('x'):rep(4096))
  if not ok then err = e break end
end
print('broken pipe:', err and (err.code == 32 or err.code == 104), err and tostring(err.category))

-- the peer closed with unread data: the reader gets ECONNRESET
f = spawn(function()
  local s = acc:accept()
  s:read_some(byte_span.new(1))
  s:close()
end)
local r = ip.tcp.socket.new()
r:connect('127.0.0.1', acc.local_port)
r:write_some('ab')
f:join()
print('reset:', try(r.read_some, r, byte_span.new(8)))

-- wrong types and values
local s = ip.tcp.socket.new()
print('open bad family:', try(s.open, s, 'v5'))
print('open number:', try(s.open, s, 4))
s:open('v4')
print('open twice:', try(s.open, s, 'v4'))
print('bind bad address:', try(s.bind, s, '1.2.3', 0))
print('bind bad port:', try(s.bind, s, '127.0.0.1', 70000))
print('bind port not integer:', try(s.bind, s, '127.0.0.1', 1.5))
print('bind table address:', try(s.bind, s, {}, 0))
print('connect bad port:', try(s.connect, s, '127.0.0.1', -1))
print('read_some string:', try(s.read_some, s, 'x'))
print('write_some number:', try(s.write_some, s, 1))
print('receive bad flags:', try(s.receive, s, byte_span.new(1), 'peek'))
print('send unknown flag bits:', try(s.send, s, 'x', 0x40000000))
print('shutdown bad what:', try(s.shutdown, s, 'sideways'))
print('shutdown unconnected:', try(s.shutdown, s, 'both'))
print('set_option unknown:', try(s.set_option, s, 'nope', true))
print('set_option wrong type:', try(s.set_option, s, 'tcp_no_delay', 1))
print('set_option int wrong type:', try(s.set_option, s, 'send_buffer_size', 'big'))
print('get_option name type:', try(s.get_option, s, 3))
print('remote of unconnected:', try(function() return s.remote_address end))
print('listen wrong type:', try(acc.listen, acc, 'x'))
print('write unconnected:', try(s.write_some, s, 'x'))
-- closed objects
s:close()
print('read closed:', try(s.read_some, s, byte_span.new(1)))
print('local_port closed:', try(function() return s.local_port end))
print('set_option closed:', try(s.set_option, s, 'tcp_no_delay', true))
print('release closed:', try(s.release, s))
print('accept closed:', try(acc.accept, ip.tcp.acceptor.new()))
print('bind closed:', try(s.bind, s, '127.0.0.1', 0))
-- wrong classes
print('socket method on acceptor:', try(ip.tcp.socket.new().read_some, acc, byte_span.new(1)))
print('acceptor method on socket:', try(acc.accept, ip.tcp.socket.new()))
print('forged self:', try(acc.accept, {}))
print('udp method on tcp:', try(ip.udp.socket.new().send_to, c, 'x', '127.0.0.1', 1))
print('new non-fd:', try(ip.tcp.socket.new, 'x'))
print('unknown method:', try(function() return acc.nope end))
