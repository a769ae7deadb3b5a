-- ip.udp.socket multicast and broadcast options: joining a group on the
-- loopback interface and receiving what is sent to it, leaving it, the
-- outgoing interface, loop and hops, and every error a user can meet.
-- (IPv4 group traffic flows over lo here; IPv6 multicast cannot be sent
-- on lo, which has no MULTICAST flag, so IPv6 is tested by the option
-- calls and their errors only.)
local ip = require 'ip'

local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end

local GROUP = '239.255.77.1'
local receiver = ip.udp.socket.new()
receiver:open('v4')
receiver:set_option('reuse_address', true)
receiver:bind('0.0.0.0', 0)
local port = receiver.local_port
print('join:', try(receiver.set_option, receiver, 'join_multicast_group', GROUP, '127.0.0.1'))
print('join again:', try(receiver.set_option, receiver, 'join_multicast_group', GROUP, '127.0.0.1'))

local sender = ip.udp.socket.new()
sender:open('v4')
print('interface:', try(sender.set_option, sender, 'multicast_interface', ip.address.loopback_v4()))
sender:set_option('multicast_loop', true)
sender:set_option('multicast_hops', 1)
print('loop, hops:', sender:get_option('multicast_loop'), sender:get_option('multicast_hops'))

local buf = byte_span.new(64)
sender:send_to('to the group', GROUP, port)
local n, from = receiver:receive_from(buf)
print('received:', tostring(buf:slice(1, n)), 'from', from)

-- after leaving, group traffic no longer arrives: a unicast datagram sent
-- after it is the next one received
print('leave:', try(receiver.set_option, receiver, 'leave_multicast_group', ip.address.new(GROUP), '127.0.0.1'))
print('leave again:', try(receiver.set_option, receiver, 'leave_multicast_group', GROUP, '127.0.0.1'))
sender:send_to('to the group, nobody listens', GROUP, port)
sender:send_to('unicast', '127.0.0.1', port)
n = receiver:receive_from(buf)
print('next received:', tostring(buf:slice(1, n)))

-- argument errors
print('not multicast:', try(receiver.set_option, receiver, 'join_multicast_group', '127.0.0.1'))
print('not an address:', try(receiver.set_option, receiver, 'join_multicast_group', 'nonsense'))
print('no group:', try(receiver.set_option, receiver, 'join_multicast_group'))
print('group a number:', try(receiver.set_option, receiver, 'join_multicast_group', 5))
print('v6 interface for v4 group:', try(receiver.set_option, receiver, 'join_multicast_group', GROUP, '::1'))
print('index for v4 group:', try(receiver.set_option, receiver, 'join_multicast_group', GROUP, 1))
print('interface v6 address:', try(sender.set_option, sender, 'multicast_interface', '::1'))
print('interface negative:', try(sender.set_option, sender, 'multicast_interface', -1))
print('interface fraction:', try(sender.set_option, sender, 'multicast_interface', 1.5))
print('interface table:', try(sender.set_option, sender, 'multicast_interface', {}))
print('get join:', try(receiver.get_option, receiver, 'join_multicast_group'))
print('get interface:', try(sender.get_option, sender, 'multicast_interface'))
local tcp = ip.tcp.socket.new()
tcp:open('v4')
print('tcp join:', try(tcp.set_option, tcp, 'join_multicast_group', GROUP))
tcp:close()
local closed = ip.udp.socket.new()
print('closed socket:', try(closed.set_option, closed, 'join_multicast_group', GROUP))

-- IPv6: membership on lo (index 1) and the options
local v6 = ip.udp.socket.new()
v6:open('v6')
v6:bind('::', 0)
print('v6 join:', try(v6.set_option, v6, 'join_multicast_group', 'ff02::1:3', 1))
print('v6 join scoped:', try(v6.set_option, v6, 'join_multicast_group', 'ff02::1:4%1'))
print('v6 leave:', try(v6.set_option, v6, 'leave_multicast_group', 'ff02::1:3', 1))
print('v6 leave again:', try(v6.set_option, v6, 'leave_multicast_group', 'ff02::1:3', 1))
print('v6 address interface:', try(v6.set_option, v6, 'join_multicast_group', 'ff02::1:3', '::1'))
print('v6 no such interface:', try(v6.set_option, v6, 'join_multicast_group', 'ff02::1:5', 99999))
print('v6 not multicast:', try(v6.set_option, v6, 'join_multicast_group', '::1'))
print('v6 interface:', try(v6.set_option, v6, 'multicast_interface', 1))
v6:set_option('multicast_loop', false)
v6:set_option('multicast_hops', 7)
print('v6 loop, hops:', v6:get_option('multicast_loop'), v6:get_option('multicast_hops'))
v6:close()

-- broadcast: refused until the option is set
local b = ip.udp.socket.new()
b:open('v4')
print('broadcast off:', b:get_option('broadcast'))
print('send to broadcast:', try(b.send_to, b, 'x', ip.address.broadcast_v4(), 9))
b:set_option('broadcast', true)
print('broadcast on:', b:get_option('broadcast'))
b:close()

sender:close()
receiver:close()
