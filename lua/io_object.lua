-- Shared machinery of every I/O object (pipe streams, sockets, files, ...):
-- built once per VM, on the first `require` of an I/O module
-- (src/modules/io_object.rs), and handed to each module's Lua code.
--
-- Invariants:
-- - An object's state (its descriptor holder, its class and the ids of its
--   ops in flight) lives in a weak-keyed map out of user code's reach;
--   methods look their argument up there, so a table that only claims the
--   class name gets EINVAL.
-- - The holder is a private `file_descriptor` user code never sees; ops
--   clone its descriptor into their slot, so closing an object with ops in
--   flight never closes the fd under the kernel.
-- - Every op id is in `pending` from submission until its completion was
--   delivered, even when the wait raised (interruption): `release()` of an
--   object with an op pending is EBUSY, `close()`/`cancel()` cancel them
--   all and each completes with `operation_aborted`.
local K, H = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local is_byte_span, raw_pcall = K.is_byte_span, K.raw_pcall
local type, error, setmetatable, next = type, error, setmetatable, next

local IO = {}
local states = setmetatable({}, { __mode = 'k' })

-- The state of `obj`; with `mt`, `obj` must be of that class (EINVAL).
function IO.state_of(obj, mt)
  local st = states[obj]
  if not st or (mt and st.mt ~= mt) then raise_errno(E.EINVAL, 1) end
  return st
end

-- A new object of class `mt` holding `holder` (nil: not open).
function IO.new_object(mt, holder)
  local obj = setmetatable({}, mt)
  states[obj] = { mt = mt, holder = holder, pending = {}, npending = 0 }
  return obj
end

function IO.eof() return K.new_error(K.categories['asio.misc'], 2) end
function IO.already_open() return K.new_error(K.categories['asio.misc'], 1) end

-- An op the kernel ran blocking on an io-wq worker (a send to a full
-- datagram receiver, a read of a regular file) ends with EINTR when it is
-- cancelled: for the fiber that is `interrupted` when it was interrupted,
-- else operation_aborted, as for any cancelled op. Other results pass.
function IO.cancelled_result(f, res)
  if res ~= -E.EINTR then return res end
  if f.interrupted and f.int_disabled == 0 then K.raise_core('interrupted') end
  return -E.ECANCELED
end

-- Raises the error of a negative CQE result.
function IO.raise_result(res)
  if res == -E.ECANCELED then error(K.operation_aborted(), 0) end
  error(K.system_error(-res), 0)
end

-- Submits an op with `submit(holder, ...)` (a Rust primitive returning the
-- op id) and waits for it; returns the CQE result (>= 0) or raises. The
-- wait may raise (interrupted): the op is finished either way, so it
-- leaves `pending` before anything is raised.
function IO.run_op(st, submit, ...)
  local f = current()
  check_suspend(f)
  local holder = st.holder
  if not holder then error(K.system_error(E.EBADF), 0) end
  local id = submit(holder, ...)
  st.pending[id] = true
  st.npending = st.npending + 1
  local ok, res = raw_pcall(await_op, f, id)
  st.pending[id] = nil
  st.npending = st.npending - 1
  if not ok then error(res, 0) end
  if type(res) == 'number' and res < 0 then IO.raise_result(IO.cancelled_result(f, res)) end
  return res
end

-- io-net: IO.run_op for an op whose completion carries more than its
-- result (an accepted fd, a received message's sender and fds): `take(id)`
-- fetches that data once. It is called after every wait, returned or
-- raised, so data of an op whose fiber was interrupted is dropped (its fds
-- closed) at once. Returns the result followed by what `take` returned.
function IO.run_op_taking(st, take, submit, ...)
  local f = current()
  check_suspend(f)
  local holder = st.holder
  if not holder then error(K.system_error(E.EBADF), 0) end
  local id = submit(holder, ...)
  st.pending[id] = true
  st.npending = st.npending + 1
  local ok, res = raw_pcall(await_op, f, id)
  st.pending[id] = nil
  st.npending = st.npending - 1
  if not ok then
    take(id)
    error(res, 0)
  end
  if type(res) == 'number' and res < 0 then
    take(id)
    IO.raise_result(IO.cancelled_result(f, res))
  end
  return res, take(id)
end

function IO.cancel_all(st)
  for id in next, st.pending do rt.cancel(id) end
end

-- close, cancel, release and assign for a class's `methods`.
function IO.common_methods(methods)
  function methods.close(self)
    local st = IO.state_of(self)
    IO.cancel_all(st)
    if st.holder then
      H.close(st.holder)
      st.holder = nil
    end
  end
  function methods.cancel(self)
    IO.cancel_all(IO.state_of(self))
  end
  function methods.release(self)
    local st = IO.state_of(self)
    if st.npending > 0 then raise_errno(E.EBUSY) end
    if not st.holder then error(K.system_error(E.EBADF), 0) end
    local fd = H.release(st.holder)
    st.holder = nil
    return fd
  end
  function methods.assign(self, fd)
    local st = IO.state_of(self)
    if st.holder then error(IO.already_open(), 0) end
    st.holder = H.adopt(fd, 2)
  end
  return methods
end

-- Read-only properties every I/O object has.
function IO.common_props(props)
  props = props or {}
  props.is_open = function(self) return IO.state_of(self).holder ~= nil end
  return props
end

-- A class table `{ new = function([fd]) }` for metatable `mt`.
function IO.constructor(mt)
  return {
    new = function(fd)
      if fd == nil then return IO.new_object(mt, nil) end
      return IO.new_object(mt, H.adopt(fd, 1))
    end,
  }
end

-- Argument checks shared by read and write methods.
function IO.check_read_buffer(buf, arg)
  if not is_byte_span(buf) then raise_errno(E.EINVAL, arg or 2) end
end
function IO.check_write_buffer(buf, arg)
  if type(buf) ~= 'string' and not is_byte_span(buf) then raise_errno(E.EINVAL, arg or 2) end
end

IO.class = K.class
return IO
