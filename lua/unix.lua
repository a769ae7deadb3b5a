-- unix (spec/io.md "unix"): stream and seqpacket acceptors and sockets,
-- datagram sockets, pair(), fd passing. src/modules/unix.rs +
-- src/modules/socket.rs give the primitives P; lua/io_object.lua the
-- shared object machinery IO and its invariants.
--
-- Invariants:
-- - fds travel only as file_descriptor objects: send_with_fds holds each
--   one open until the sendmsg completes (the sender keeps its objects);
--   receive_with_fds gets owned, close-on-exec descriptors.
-- - Receives with fds or a sender run through IO.run_op_taking, so an
--   interrupted receive closes the fds it got, never leaking them;
--   acceptors accept on a multishot ring accept (IO.multishot_acceptor in
--   lua/io_object.lua, with its invariants).
-- - When the kernel truncated the control data (more fds came than
--   `maxfds` had room for: MSG_CTRUNC), the fds that did arrive are closed
--   and the receive raises EMSGSIZE; the error's `bytes` field says how
--   much data came with them (it is in the buffer).
local K, P, IO = ...
local E = K.rt.errno
local raise_errno = K.raise_errno
local state_of, run_op, run_op_taking = IO.state_of, IO.run_op, IO.run_op_taking
local run_op_inline = IO.run_op_inline
local run_fast, FAST_RECV, FAST_SEND = IO.run_fast, IO.FAST_RECV, IO.FAST_SEND
-- The primitive a fast receive falls back on (src/modules/fast_io.rs).
local function recv_slow(_, holder, buf) return P.recv(holder, buf) end
local error, type = error, type

-- A path argument (a string or a real filesystem.path: IO.path_arg reads
-- the path's string from the private map, never calling a metamethod) as
-- a packed endpoint.
local function path_arg(v, arg)
  return P.unix_endpoint(IO.path_arg(v, arg), arg)
end

local function holder_of(st)
  if not st.holder then error(K.system_error(E.EBADF), 0) end
  return st.holder
end

local function check_flags(flags, arg)
  if flags ~= nil and type(flags) ~= 'number' then raise_errno(E.EINVAL, arg) end
  return flags
end

local function check_maxfds(maxfds, arg)
  if type(maxfds) ~= 'number' or maxfds < 0 or maxfds > P.max_fds or maxfds % 1 ~= 0 then
    raise_errno(E.EINVAL, arg)
  end
  return maxfds
end

local function check_fds(fds, arg)
  if type(fds) ~= 'table' then raise_errno(E.EINVAL, arg) end
  return fds
end

-- The methods every unix socket class has; `ref.mt` is the class.
local function base_methods(ref, sock_type)
  local methods = IO.common_methods({})
  local props = IO.common_props()
  function methods.open(self)
    local st = state_of(self, ref.mt)
    if st.holder then error(IO.already_open(), 0) end
    st.holder = P.socket(P.AF_UNIX, sock_type)
  end
  function methods.bind(self, path)
    local st = state_of(self, ref.mt)
    P.bind(holder_of(st), path_arg(path, 2))
  end
  function methods.set_option(self, name, a, b)
    local st = state_of(self, ref.mt)
    if type(name) ~= 'string' then raise_errno(E.EINVAL, 2) end
    P.set_option(holder_of(st), name, a, b)
  end
  function methods.get_option(self, name)
    local st = state_of(self, ref.mt)
    if type(name) ~= 'string' then raise_errno(E.EINVAL, 2) end
    return P.get_option(holder_of(st), name)
  end
  props.local_path = function(self)
    return P.unix_decode(P.local_endpoint(holder_of(state_of(self))))
  end
  return methods, props
end

-- Methods of connected sockets (stream, seqpacket, datagram).
local function socket_class(name, sock_type, is_stream)
  local ref = {}
  local methods, props = base_methods(ref, sock_type)
  local mt = IO.class(name, methods, props)
  ref.mt = mt
  props.remote_path = function(self)
    return P.unix_decode(P.remote_endpoint(holder_of(state_of(self))))
  end
  function methods.shutdown(self, what)
    P.shutdown(holder_of(state_of(self, mt)), what or 'both')
  end
  local function result(buf, n)
    if is_stream and n == 0 and #buf > 0 then error(IO.eof(), 0) end
    return n
  end
  function methods.receive(self, buf, flags)
    local st = state_of(self, mt)
    IO.check_read_buffer(buf)
    return result(buf, run_op(st, P.recv, buf, check_flags(flags, 3)))
  end
  function methods.send(self, buf, flags)
    local st = state_of(self, mt)
    IO.check_write_buffer(buf)
    return run_op_inline(st, P.send, buf, check_flags(flags, 3))
  end
  if is_stream then
    function methods.read_some(self, buf)
      local st = state_of(self, mt)
      IO.check_read_buffer(buf)
      return result(buf, run_fast(st, FAST_RECV, recv_slow, buf))
    end
    function methods.write_some(self, buf)
      local st = state_of(self, mt)
      IO.check_write_buffer(buf)
      if type(buf) == 'string' then return run_op_inline(st, P.send, buf) end
      return run_fast(st, FAST_SEND, P.send, buf)
    end
  end
  -- receive_with_fds(buf, maxfds) -> n, fds (and the sender's path for
  -- receive_from_with_fds)
  local function receive_fds(self, buf, maxfds)
    local st = state_of(self, mt)
    IO.check_read_buffer(buf)
    check_maxfds(maxfds, 3)
    local n, _, from, fds, _, truncated = run_op_taking(st, P.take, P.recv_msg, buf, maxfds)
    if truncated then
      local e = K.system_error(E.EMSGSIZE)
      e.bytes = n
      error(e, 0)
    end
    return result(buf, n), fds, from
  end
  function methods.receive_with_fds(self, buf, maxfds)
    local n, fds = receive_fds(self, buf, maxfds)
    return n, fds
  end
  function methods.send_with_fds(self, buf, fds)
    local st = state_of(self, mt)
    IO.check_write_buffer(buf)
    return run_op(st, P.send_msg, buf, nil, check_fds(fds, 3))
  end
  -- Opens the socket when it is closed (as ip sockets do). A unix connect
  -- never waits: it succeeds at once, or the listener's backlog is full
  -- and it raises EAGAIN (the kernel's wait for room could not be
  -- cancelled; see connect_now in src/modules/socket.rs).
  function methods.connect(self, path)
    local st = state_of(self, mt)
    local ep = path_arg(path, 2)
    if not st.holder then st.holder = P.socket(P.AF_UNIX, sock_type) end
    P.connect_now(st.holder, ep, sock_type ~= P.SOCK_DGRAM)
  end
  local class = IO.constructor(mt)
  function class.pair()
    local a, b = P.pair(sock_type)
    return IO.new_object(mt, a), IO.new_object(mt, b)
  end
  return class, mt, methods, receive_fds
end

local stream, stream_mt = socket_class('unix.stream_socket', P.SOCK_STREAM, true)
local seqpacket, seqpacket_mt = socket_class('unix.seqpacket_socket', P.SOCK_SEQPACKET, false)
local datagram, dgram_mt, dgram_methods, dgram_receive_fds =
  socket_class('unix.datagram_socket', P.SOCK_DGRAM, false)

local function decode_from(from)
  if from == nil then return nil end
  return P.unix_decode(from)
end

function dgram_methods.receive_from(self, buf, flags)
  local st = state_of(self, dgram_mt)
  IO.check_read_buffer(buf)
  local n, _, from = run_op_taking(st, P.take, P.recv_msg, buf, 0, check_flags(flags, 3))
  return n, decode_from(from)
end
function dgram_methods.receive_from_with_fds(self, buf, maxfds)
  local n, fds, from = dgram_receive_fds(self, buf, maxfds)
  return n, decode_from(from), fds
end
function dgram_methods.send_to(self, buf, path, flags)
  local st = state_of(self, dgram_mt)
  IO.check_write_buffer(buf)
  return run_op(st, P.send_msg, buf, path_arg(path, 3), nil, check_flags(flags, 4))
end
function dgram_methods.disconnect(self)
  local st = state_of(self, dgram_mt)
  P.connect_now(holder_of(st), nil)
end

-- Acceptors for the connection-oriented types.
local function acceptor_class(name, sock_type, socket_mt)
  local ref = {}
  local methods, props = base_methods(ref, sock_type)
  local mt = IO.class(name, methods, props)
  ref.mt = mt
  function methods.listen(self, backlog)
    local st = state_of(self, mt)
    if backlog ~= nil and type(backlog) ~= 'number' then raise_errno(E.EINVAL, 2) end
    P.listen(holder_of(st), backlog)
  end
  -- accept() on a multishot ring accept (IO.multishot_acceptor)
  IO.multishot_acceptor(P, methods, mt, socket_mt)
  return IO.constructor(mt)
end

return {
  stream_socket = stream,
  seqpacket_socket = seqpacket,
  datagram_socket = datagram,
  stream_acceptor = acceptor_class('unix.stream_acceptor', P.SOCK_STREAM, stream_mt),
  seqpacket_acceptor = acceptor_class('unix.seqpacket_acceptor', P.SOCK_SEQPACKET, seqpacket_mt),
  message_flag = {
    peek = P.MSG_PEEK,
    out_of_band = P.MSG_OOB,
    do_not_route = P.MSG_DONTROUTE,
    end_of_record = P.MSG_EOR,
    wait_all = P.MSG_WAITALL,
  },
}
