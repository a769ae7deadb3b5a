-- ip (spec/io.md "ip"): addresses, TCP acceptors and sockets, UDP sockets.
-- src/modules/ip.rs + src/modules/socket.rs give the primitives P (packed
-- endpoints, ring ops, options); lua/io_object.lua the shared object
-- machinery IO and its invariants.
--
-- Invariants:
-- - An ip.address is immutable; its bytes (4 or 16) and scope id live in a
--   weak-keyed map out of user code's reach, filled only from P.parse or
--   from endpoints the kernel wrote, so every address object is valid.
-- - receive_from runs through IO.run_op_taking: the sender is taken after
--   every wait. Acceptors accept on a multishot ring accept
--   (IO.multishot_acceptor in lua/io_object.lua, with its invariants).
local K, P, IO = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local state_of, run_op, run_op_taking = IO.state_of, IO.run_op, IO.run_op_taking
local run_op_inline = IO.run_op_inline
local run_fast, FAST_STREAM, FAST_SEND = IO.run_fast, IO.FAST_STREAM, IO.FAST_SEND
-- The primitive a fast receive falls back on (src/modules/fast_io.rs).
local function recv_slow(_, holder, buf) return P.recv(holder, buf) end
-- A fast send's (a local: one table lookup less per call in the trace).
local send_slow = P.send
local error, type, setmetatable = error, type, setmetatable
local sbyte, ssub, smatch, srep = string.byte, string.sub, string.match, string.rep
local tonumber, tostring, pairs = tonumber, tostring, pairs

---------------------------------------------------------------------------
-- ip.address
local addresses = setmetatable({}, { __mode = 'k' })
local addr_methods, addr_props = {}, {}
local addr_mt = IO.class('ip.address', addr_methods, addr_props)

local function new_address(bytes, scope)
  local a = setmetatable({}, addr_mt)
  addresses[a] = { b = bytes, scope = scope or 0 }
  return a
end

-- Messages to and from sandboxed actors read and make addresses here.
P.set_codec(function(v)
  local s = addresses[v]
  if s then return s.b, s.scope end
end, new_address)

local function parse_or_raise(text, arg)
  if type(text) ~= 'string' then raise_errno(E.EINVAL, arg) end
  local bytes, scope = P.parse(text)
  if not bytes then raise_errno(E.EINVAL, arg) end
  return bytes, scope
end

-- The state of an address argument: an ip.address or its text.
local function addr_arg(v, arg)
  local a = addresses[v]
  if a then return a end
  if type(v) == 'string' then
    local bytes, scope = parse_or_raise(v, arg)
    return { b = bytes, scope = scope }
  end
  raise_errno(E.EINVAL, arg)
end

local V4_MAPPED_PREFIX = srep('\0', 10) .. '\255\255'

addr_mt.__tostring = function(a)
  local s = addresses[a]
  return P.format(s.b, s.scope)
end
addr_mt.__eq = function(a, b)
  local x, y = addresses[a], addresses[b]
  return x ~= nil and y ~= nil and x.b == y.b and x.scope == y.scope
end
-- asio's order: every IPv4 address before every IPv6 one, then bytes,
-- then scope id.
local function less(x, y)
  if #x.b ~= #y.b then return #x.b < #y.b end
  if x.b ~= y.b then return x.b < y.b end
  return x.scope < y.scope
end
addr_mt.__lt = function(a, b)
  return less(addr_arg(a, 1), addr_arg(b, 2))
end
addr_mt.__le = function(a, b)
  local x, y = addr_arg(a, 1), addr_arg(b, 2)
  return not less(y, x)
end

function addr_methods.to_v4(self)
  local s = addr_arg(self, 1)
  if #s.b == 4 then return self end
  if ssub(s.b, 1, 12) == V4_MAPPED_PREFIX then return new_address(ssub(s.b, 13), 0) end
  raise_errno(E.EINVAL, 1)
end

function addr_methods.to_v6(self)
  local s = addr_arg(self, 1)
  if #s.b == 16 then return self end
  return new_address(V4_MAPPED_PREFIX .. s.b, 0)
end

local function v6_pred(f)
  return function(self)
    local s = addresses[self]
    return #s.b == 16 and f(s.b) or false
  end
end
addr_props.is_v4 = function(self) return #addresses[self].b == 4 end
addr_props.is_v6 = function(self) return #addresses[self].b == 16 end
addr_props.scope_id = function(self) return addresses[self].scope end
addr_props.is_unspecified = function(self)
  local b = addresses[self].b
  return b == srep('\0', #b)
end
addr_props.is_loopback = function(self)
  local b = addresses[self].b
  if #b == 4 then return sbyte(b, 1) == 127 end
  return b == srep('\0', 15) .. '\1'
end
addr_props.is_multicast = function(self)
  local b = addresses[self].b
  if #b == 4 then return sbyte(b, 1) >= 224 and sbyte(b, 1) <= 239 end
  return sbyte(b, 1) == 0xff
end
addr_props.is_link_local = v6_pred(function(b)
  return sbyte(b, 1) == 0xfe and sbyte(b, 2) >= 0x80 and sbyte(b, 2) <= 0xbf
end)
addr_props.is_site_local = v6_pred(function(b)
  return sbyte(b, 1) == 0xfe and sbyte(b, 2) >= 0xc0
end)
addr_props.is_v4_mapped = v6_pred(function(b) return ssub(b, 1, 12) == V4_MAPPED_PREFIX end)
local function multicast_scope(scope)
  return v6_pred(function(b) return sbyte(b, 1) == 0xff and sbyte(b, 2) % 16 == scope end)
end
addr_props.is_multicast_node_local = multicast_scope(0x01)
addr_props.is_multicast_link_local = multicast_scope(0x02)
addr_props.is_multicast_site_local = multicast_scope(0x05)
addr_props.is_multicast_org_local = multicast_scope(0x08)
addr_props.is_multicast_global = multicast_scope(0x0e)

local address = {}
function address.new(text)
  if text == nil then return new_address('\0\0\0\0', 0) end
  return new_address(parse_or_raise(text, 1))
end
function address.any_v4() return new_address('\0\0\0\0', 0) end
function address.any_v6() return new_address(srep('\0', 16), 0) end
function address.loopback_v4() return new_address('\127\0\0\1', 0) end
function address.loopback_v6() return new_address(srep('\0', 15) .. '\1', 0) end
function address.broadcast_v4() return new_address('\255\255\255\255', 0) end

local function check_port(port, arg)
  if type(port) ~= 'number' or port < 0 or port > 65535 or port % 1 ~= 0 then
    raise_errno(E.EINVAL, arg)
  end
  return port
end

-- The packed endpoint of (address, port) arguments at `arg`, `arg + 1`.
local function endpoint(addr, port, arg)
  local a = addr_arg(addr, arg)
  return P.ip_endpoint(a.b, check_port(port, arg + 1), a.scope), #a.b == 16
end

-- address object and port of a packed endpoint
local function decode(ep)
  local bytes, port, scope = P.ip_decode(ep)
  return new_address(bytes, scope), port
end

local ip = { address = address }

function ip.tostring(addr, port)
  local a = addr_arg(addr, 1)
  local text = P.format(a.b, a.scope)
  if port == nil then return text end
  check_port(port, 2)
  if #a.b == 16 then return '[' .. text .. ']:' .. port end
  return text .. ':' .. port
end

-- "host:port" or "[v6]:port" -> address, port
function ip.toendpoint(text)
  if type(text) ~= 'string' then raise_errno(E.EINVAL, 1) end
  local host, port = smatch(text, '^%[([^%]]*)%]:(%d+)$')
  if not host then
    host, port = smatch(text, '^([^:]*):(%d+)$')
  end
  if not host then raise_errno(E.EINVAL, 1) end
  port = tonumber(port)
  if port > 65535 then raise_errno(E.EINVAL, 1) end
  local bytes, scope = P.parse(host)
  if not bytes then raise_errno(E.EINVAL, 1) end
  return new_address(bytes, scope), port
end

function ip.host_name() return P.host_name() end

ip.message_flag = {
  peek = P.MSG_PEEK,
  out_of_band = P.MSG_OOB,
  do_not_route = P.MSG_DONTROUTE,
  end_of_record = P.MSG_EOR,
  wait_all = P.MSG_WAITALL,
}

local function check_flags(flags, arg)
  if flags ~= nil and type(flags) ~= 'number' then raise_errno(E.EINVAL, arg) end
  return flags
end

---------------------------------------------------------------------------
-- shared socket methods
local multicast_setters

local function family_arg(v, arg)
  if v == 'v4' then return P.AF_INET end
  if v == 'v6' then return P.AF_INET6 end
  local a = addresses[v]
  if a then return #a.b == 16 and P.AF_INET6 or P.AF_INET end
  raise_errno(E.EINVAL, arg)
end

local function holder_of(st)
  if not st.holder then error(K.system_error(E.EBADF), 0) end
  return st.holder
end

-- io-finish: UDP multicast options that take addresses (set only, as in
-- asio). join_multicast_group/leave_multicast_group(group[, interface]):
-- `group` a multicast address; `interface` for an IPv4 group the address
-- of a local interface (default: any, the kernel picks by route), for an
-- IPv6 group an interface index (default: the group's scope id, else 0).
-- multicast_interface(interface): the outgoing interface, an IPv4 address
-- or an IPv6 interface index.
local function multicast_group(what)
  return function(holder, group, interface)
    local g = addr_arg(group, 3)
    local is_multicast = #g.b == 4 and sbyte(g.b, 1) >= 224 and sbyte(g.b, 1) <= 239
      or #g.b == 16 and sbyte(g.b, 1) == 0xff
    if not is_multicast then raise_errno(E.EINVAL, 3) end
    local iface
    if #g.b == 4 then
      if interface ~= nil then
        local i = addr_arg(interface, 4)
        if #i.b ~= 4 then raise_errno(E.EINVAL, 4) end
        iface = i.b
      end
    else
      if interface == nil then
        iface = g.scope
      elseif type(interface) == 'number' and interface >= 0 and interface % 1 == 0
          and interface < 2 ^ 32 then
        iface = interface
      else
        raise_errno(E.EINVAL, 4)
      end
    end
    P.multicast(holder, what, g.b, iface)
  end
end
multicast_setters = {
  join_multicast_group = multicast_group('join'),
  leave_multicast_group = multicast_group('leave'),
  multicast_interface = function(holder, interface)
    if type(interface) == 'number' then
      if interface < 0 or interface % 1 ~= 0 or interface >= 2 ^ 32 then raise_errno(E.EINVAL, 3) end
      return P.multicast(holder, 'interface', nil, interface)
    end
    local i = addr_arg(interface, 3)
    if #i.b ~= 4 then raise_errno(E.EINVAL, 3) end
    P.multicast(holder, 'interface', nil, i.b)
  end,
}

-- open, bind, options and local endpoint for a class of socket type
-- `sock_type`, metatable `mt`.
local function socket_methods(mt_ref, sock_type)
  local methods = IO.common_methods({})
  local props = IO.common_props()
  function methods.open(self, family)
    local st = state_of(self, mt_ref.mt)
    local af = family_arg(family, 2)
    if st.holder then error(IO.already_open(), 0) end
    st.holder = P.socket(af, sock_type)
  end
  function methods.bind(self, addr, port)
    local st = state_of(self, mt_ref.mt)
    local ep = endpoint(addr, port, 2)
    P.bind(holder_of(st), ep)
  end
  function methods.set_option(self, name, a, b)
    local st = state_of(self, mt_ref.mt)
    if type(name) ~= 'string' then raise_errno(E.EINVAL, 2) end
    if multicast_setters[name] and sock_type == P.SOCK_DGRAM then
      return multicast_setters[name](holder_of(st), a, b)
    end
    if name == 'enable_connection_aborted' then
      if type(a) ~= 'boolean' then raise_errno(E.EINVAL, 3) end
      holder_of(st)
      st.connection_aborted = a
      return
    end
    P.set_option(holder_of(st), name, a, b)
  end
  function methods.get_option(self, name)
    local st = state_of(self, mt_ref.mt)
    if type(name) ~= 'string' then raise_errno(E.EINVAL, 2) end
    if name == 'enable_connection_aborted' then
      holder_of(st)
      return st.connection_aborted == true
    end
    return P.get_option(holder_of(st), name)
  end
  props.local_address = function(self)
    local a = decode(P.local_endpoint(holder_of(state_of(self))))
    return a
  end
  props.local_port = function(self)
    local _, port = decode(P.local_endpoint(holder_of(state_of(self))))
    return port
  end
  return methods, props
end

local function read_result(buf, n)
  if n == 0 and #buf > 0 then error(IO.eof(), 0) end
  return n
end

---------------------------------------------------------------------------
-- ip.tcp.socket
local tcp_socket_ref = {}
local tcp_socket_methods, tcp_socket_props = socket_methods(tcp_socket_ref, P.SOCK_STREAM)
local tcp_socket_mt = IO.class('ip.tcp.socket', tcp_socket_methods, tcp_socket_props)
tcp_socket_ref.mt = tcp_socket_mt

tcp_socket_props.remote_address = function(self)
  local a = decode(P.remote_endpoint(holder_of(state_of(self))))
  return a
end
tcp_socket_props.remote_port = function(self)
  local _, port = decode(P.remote_endpoint(holder_of(state_of(self))))
  return port
end

-- Opens the socket for the address's family when it is closed (asio's
-- connect does the same).
function tcp_socket_methods.connect(self, addr, port)
  local st = state_of(self, tcp_socket_mt)
  local ep, v6 = endpoint(addr, port, 2)
  if not st.holder then st.holder = P.socket(v6 and P.AF_INET6 or P.AF_INET, P.SOCK_STREAM) end
  run_op(st, P.connect, ep)
end

function tcp_socket_methods.read_some(self, buf)
  local st = state_of(self, tcp_socket_mt)
  IO.check_read_buffer(buf)
  return read_result(buf, run_fast(st, FAST_STREAM, recv_slow, buf))
end

function tcp_socket_methods.write_some(self, buf)
  local st = state_of(self, tcp_socket_mt)
  IO.check_write_buffer(buf)
  if type(buf) == 'string' then return run_op_inline(st, P.send, buf) end
  return run_fast(st, FAST_SEND, send_slow, buf)
end

function tcp_socket_methods.receive(self, buf, flags)
  local st = state_of(self, tcp_socket_mt)
  IO.check_read_buffer(buf)
  if flags == nil then return read_result(buf, run_fast(st, FAST_STREAM, recv_slow, buf)) end
  check_flags(flags, 3)
  return read_result(buf, IO.receive_flagged(st, buf, flags, function(n0)
    if n0 >= #buf then return 0 end
    return run_op(st, P.recv, n0 == 0 and buf or buf:slice(n0 + 1), flags)
  end))
end

function tcp_socket_methods.send(self, buf, flags)
  local st = state_of(self, tcp_socket_mt)
  IO.check_write_buffer(buf)
  if flags == nil and type(buf) ~= 'string' then return run_fast(st, FAST_SEND, send_slow, buf) end
  return run_op_inline(st, P.send, buf, check_flags(flags, 3))
end

-- send_file(file, offset, n[, n_per_send[, head[, tail]]]) -> bytes sent
-- (Emilua's signature; there Windows only). Sends `head`, then `n` bytes of
-- `file` (a file.random_access or file.stream; its position is neither
-- used nor moved) from `offset`, then `tail`. The file's bytes move by
-- ring splices, file -> a private pipe -> socket, never through Lua memory;
-- `n_per_send` caps one splice (default and most: the pipe's 64 KiB). The
-- end of the file before `n` bytes ends the transfer early: the count
-- returned says how far it got. The pipe is made per call and closed
-- before the call returns or raises. Each splice is an op of both the
-- socket and the file: interrupting the fiber or
-- close()/cancel() of either object ends the call (bytes already in the
-- pipe are then dropped: the stream is cut, as for an interrupted
-- write_all); release() of either is EBUSY meanwhile.
local SPLICE_CHUNK = 65536

local function file_state(file, arg)
  local ok, fst = K.raw_pcall(state_of, file)
  if not ok then raise_errno(E.EINVAL, arg) end
  local class = fst.mt.__metatable
  if class ~= 'file.random_access' and class ~= 'file.stream' then raise_errno(E.EINVAL, arg) end
  return fst
end

local function count_arg(v, arg, min)
  if type(v) ~= 'number' or v < min or v % 1 ~= 0 or v >= 2 ^ 53 then raise_errno(E.EINVAL, arg) end
  return v
end

local function write_all(st, buf)
  local len, done = #buf, 0
  if type(buf) == 'string' then buf = byte_span.append(buf) end
  while done < len do
    done = done + run_op_inline(st, P.send, buf:slice(done + 1))
  end
  return done
end

local function splice_file(st, fst, offset, n, chunk)
  -- close()/cancel() of either object between two splices aborts the rest
  local cancels, file_cancels = st.cancels, fst.cancels
  local function check_cancel()
    if st.cancels ~= cancels or fst.cancels ~= file_cancels then
      error(K.operation_aborted(), 0)
    end
  end
  -- both objects are busy for the whole call: release() is EBUSY
  st.npending, fst.npending = st.npending + 1, fst.npending + 1
  local both = { st, fst }
  local r, w = P.splice_pipe()
  local ok, res = K.raw_pcall(function()
    local sent = 0
    while sent < n do
      local want = n - sent
      if want > chunk then want = chunk end
      local got = IO.run_op_tracked(both, P.splice, holder_of(fst), offset + sent, w, want)
      check_cancel()
      if got == 0 then break end -- the end of the file
      local out = 0
      while out < got do
        -- w rides along: closing it while this splice waits would block
        out = out + IO.run_op_tracked(both, P.splice, r, nil, holder_of(st), got - out, w)
        check_cancel()
      end
      sent = sent + got
    end
    return sent
  end)
  r:close()
  w:close()
  st.npending, fst.npending = st.npending - 1, fst.npending - 1
  if not ok then error(res, 0) end
  return res
end

function tcp_socket_methods.send_file(self, file, offset, n, n_per_send, head, tail)
  local st = state_of(self, tcp_socket_mt)
  local fst = file_state(file, 2)
  count_arg(offset, 3, 0)
  count_arg(n, 4, 0)
  local chunk = SPLICE_CHUNK
  if n_per_send ~= nil then
    chunk = count_arg(n_per_send, 5, 1)
    if chunk > SPLICE_CHUNK then chunk = SPLICE_CHUNK end
  end
  if head ~= nil then IO.check_write_buffer(head, 6) end
  if tail ~= nil then IO.check_write_buffer(tail, 7) end
  holder_of(st)
  holder_of(fst)
  local total = 0
  if head then total = total + write_all(st, head) end
  local sent = 0
  if n > 0 then sent = splice_file(st, fst, offset, n, chunk) end
  total = total + sent
  if tail and sent == n then total = total + write_all(st, tail) end
  return total
end

-- wait('read'|'write'|'error'): suspends until the socket is ready for it
-- (a one-shot ring poll).
function tcp_socket_methods.wait(self, what)
  local st = state_of(self, tcp_socket_mt)
  if what ~= 'read' and what ~= 'write' and what ~= 'error' then raise_errno(E.EINVAL, 2) end
  run_op(st, P.wait, what)
end

-- io_control('bytes_readable') -> bytes that can be read without waiting.
function tcp_socket_methods.io_control(self, what)
  local st = state_of(self, tcp_socket_mt)
  if what ~= 'bytes_readable' then raise_errno(E.EINVAL, 2) end
  return P.bytes_readable(holder_of(st))
end

-- Dissolves the connection (connect to AF_UNSPEC); the socket stays open.
function tcp_socket_methods.disconnect(self)
  local st = state_of(self, tcp_socket_mt)
  P.connect_now(holder_of(st), nil)
end

function tcp_socket_methods.shutdown(self, what)
  local st = state_of(self, tcp_socket_mt)
  P.shutdown(holder_of(st), what or 'both')
end

---------------------------------------------------------------------------
-- ip.tcp.acceptor
local acceptor_ref = {}
local acceptor_methods, acceptor_props = socket_methods(acceptor_ref, P.SOCK_STREAM)
local acceptor_mt = IO.class('ip.tcp.acceptor', acceptor_methods, acceptor_props)
acceptor_ref.mt = acceptor_mt

function acceptor_methods.listen(self, backlog)
  local st = state_of(self, acceptor_mt)
  if backlog ~= nil and type(backlog) ~= 'number' then raise_errno(E.EINVAL, 2) end
  P.listen(holder_of(st), backlog)
end

-- accept() on a multishot ring accept (lua/io_object.lua's
-- IO.multishot_acceptor has the machinery and its invariants).
IO.multishot_acceptor(P, acceptor_methods, acceptor_mt, tcp_socket_mt)

---------------------------------------------------------------------------
-- ip.udp.socket
local udp_ref = {}
local udp_methods, udp_props = socket_methods(udp_ref, P.SOCK_DGRAM)
local udp_mt = IO.class('ip.udp.socket', udp_methods, udp_props)
udp_ref.mt = udp_mt

udp_props.remote_address = tcp_socket_props.remote_address
udp_props.remote_port = tcp_socket_props.remote_port

-- Sets the default peer (no wait: a datagram socket has nobody to wait
-- for); opens the socket for the address's family when it is closed.
function udp_methods.connect(self, addr, port)
  local st = state_of(self, udp_mt)
  local ep, v6 = endpoint(addr, port, 2)
  if not st.holder then st.holder = P.socket(v6 and P.AF_INET6 or P.AF_INET, P.SOCK_DGRAM) end
  P.connect_now(st.holder, ep)
end

function udp_methods.disconnect(self)
  local st = state_of(self, udp_mt)
  P.connect_now(holder_of(st), nil)
end

function udp_methods.shutdown(self, what)
  local st = state_of(self, udp_mt)
  P.shutdown(holder_of(st), what or 'both')
end

function udp_methods.receive(self, buf, flags)
  local st = state_of(self, udp_mt)
  IO.check_read_buffer(buf)
  return run_op(st, P.recv, buf, check_flags(flags, 3))
end

function udp_methods.send(self, buf, flags)
  local st = state_of(self, udp_mt)
  IO.check_write_buffer(buf)
  return run_op_inline(st, P.send, buf, check_flags(flags, 3))
end

function udp_methods.receive_from(self, buf, flags)
  local st = state_of(self, udp_mt)
  IO.check_read_buffer(buf)
  local n, _, from = run_op_taking(st, P.take, P.recv_msg, buf, 0, check_flags(flags, 3))
  if not from then return n end
  local addr, port = decode(from)
  return n, addr, port
end

function udp_methods.send_to(self, buf, addr, port, flags)
  local st = state_of(self, udp_mt)
  IO.check_write_buffer(buf)
  local ep = endpoint(addr, port, 3)
  return run_op(st, P.send_msg, buf, ep, nil, check_flags(flags, 5))
end

ip.tcp = {
  socket = IO.constructor(tcp_socket_mt),
  acceptor = IO.constructor(acceptor_mt),
}
ip.udp = { socket = IO.constructor(udp_mt) }

-- Tries each {address=, port=} of `results` in order until one connects;
-- returns that address and port. `condition(address, port)`, when given,
-- may skip an endpoint by returning false. Every failure closes the socket
-- before the next try; the last failure is raised (asio.misc not_found
-- when no endpoint was tried).
function ip.connect(sock, results, condition)
  local st = state_of(sock, tcp_socket_mt)
  if type(results) ~= 'table' then raise_errno(E.EINVAL, 2) end
  if condition ~= nil and type(condition) ~= 'function' then raise_errno(E.EINVAL, 3) end
  local last = K.new_error(K.categories['asio.misc'], 3) -- not_found
  for i = 1, #results do
    local r = results[i]
    if type(r) ~= 'table' then raise_errno(E.EINVAL, 2) end
    if condition == nil or condition(r.address, r.port) then
      if st.holder then tcp_socket_methods.close(sock) end
      local ok, e = K.raw_pcall(tcp_socket_methods.connect, sock, r.address, r.port)
      if ok then return r.address, r.port end
      last = e
      if type(e) == 'table' and K.is_interrupted and K.is_interrupted(e) then error(e, 0) end
    end
  end
  if st.holder then tcp_socket_methods.close(sock) end
  error(last, 0)
end

---------------------------------------------------------------------------
-- Name resolution: getaddrinfo/getnameinfo run on the blocking helper pool
-- (src/executor/blocking.rs), never on this thread; the fiber waits for the
-- job's ring op like for any other, and interrupting it cancels that op.
local netdb_messages = {
  [1] = 'Host not found (authoritative)',
  [2] = 'Host not found (non-authoritative), try again later',
  [3] = 'A non-recoverable error occurred during database lookup',
  [4] = 'The query is valid, but it does not have associated data',
}
local addrinfo_messages = { [1] = 'Service not found', [2] = 'Socket type not supported' }
local categories = {
  ['asio.netdb'] = K.categories['asio.netdb']
    or K.category('asio.netdb', function(code) return netdb_messages[code] or '' end),
  ['asio.addrinfo'] = K.categories['asio.addrinfo']
    or K.category('asio.addrinfo', function(code) return addrinfo_messages[code] or '' end),
  system = K.categories.system,
}

local function run_job(submit, ...)
  local f = K.current()
  K.check_suspend(f)
  local res = K.await_op(f, submit(...))
  if type(res) == 'number' then IO.raise_result(res) end
  if res.category then error(K.new_error(categories[res.category], res.code), 0) end
  return res
end

ip.address_info_flag = {
  address_configured = P.AI_ADDRCONFIG,
  all_matching = P.AI_ALL,
  canonical_name = P.AI_CANONNAME,
  numeric_host = P.AI_NUMERICHOST,
  numeric_service = P.AI_NUMERICSERV,
  passive = P.AI_PASSIVE,
  v4_mapped = P.AI_V4MAPPED,
}

local function resolver(socktype, family)
  return function(host, service, flags)
    if host ~= nil and type(host) ~= 'string' then raise_errno(E.EINVAL, 1) end
    if service ~= nil and type(service) ~= 'string' and type(service) ~= 'number' then
      raise_errno(E.EINVAL, 2)
    end
    if flags ~= nil and type(flags) ~= 'number' then raise_errno(E.EINVAL, 3) end
    local list = run_job(P.resolve, host, service, family, socktype, flags or 0)
    local out = {}
    for i = 1, #list do
      local addr, port = decode(list[i].endpoint)
      out[i] = { address = addr, port = port, canonical_name = list[i].canonical_name }
    end
    return out
  end
end

local function name_info(ni_flags)
  return function(addr, port)
    local ep = endpoint(addr, port, 1)
    local r = run_job(P.name_info, ep, ni_flags)
    return r.host, r.service
  end
end

for name, socktype in pairs{ tcp = P.SOCK_STREAM, udp = P.SOCK_DGRAM } do
  local t = ip[name]
  t.get_address_info = resolver(socktype, P.AF_UNSPEC)
  t.get_address_v4_info = resolver(socktype, P.AF_INET)
  t.get_address_v6_info = resolver(socktype, P.AF_INET6)
  t.get_name_info = name_info(name == 'udp' and P.NI_DGRAM or 0)
end

return ip
