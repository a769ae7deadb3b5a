-- file (spec/io.md "file"): file.stream (reads and writes at the file's
-- position) and file.random_access (at explicit offsets) over ring ops,
-- the *_at helpers and file.open_flag. src/modules/file.rs gives the
-- primitives P; lua/io_object.lua the shared object machinery IO.
--
-- Invariants: those of IO. `open` is a ring openat, so it suspends (an
-- interruption point, unlike Emilua's blocking open); while it is pending
-- the object is not open, the op is in `pending` (close()/cancel() abort
-- it, release() is EBUSY), and the fd it yields becomes the holder only
-- if the object is still unopened then (else it is closed: already_open).
local K, P, IO = ...
local E = K.rt.errno
local raise_errno = K.raise_errno
local state_of, run_op, run_op_inline = IO.state_of, IO.run_op, IO.run_op_inline
local run_fast, FAST_READ, FAST_WRITE = IO.run_fast, IO.FAST_READ, IO.FAST_WRITE
local type, error = type, error

local props = IO.common_props()
local stream_methods = IO.common_methods({})
local ra_methods = IO.common_methods({})
local stream_mt = IO.class('file.stream', stream_methods, props)
local ra_mt = IO.class('file.random_access', ra_methods, props)

local function open(mt)
  return function(self, path, flags)
    local st = state_of(self, mt)
    path = IO.path_arg(path, 2)
    if st.holder then error(IO.already_open(), 0) end
    st.open_aborted = nil
    -- In a sandbox the open is a plain call, installed in the ring's table.
    local fd = P.open_local(path, flags)
    if fd then
      st.holder = fd
      return
    end
    fd = P.adopt_opened(IO.run_op_unheld(st, P.open, path, flags))
    if st.holder then
      fd:close()
      error(IO.already_open(), 0)
    end
    -- close()/cancel() came while the open ran and it finished anyway (an
    -- openat the kernel had already started is not cancelled): the caller
    -- asked for no open object.
    if st.open_aborted then
      st.open_aborted = nil
      fd:close()
      error(K.operation_aborted(), 0)
    end
    st.holder = fd
  end
end
stream_methods.open = open(stream_mt)
ra_methods.open = open(ra_mt)

-- close() and cancel() also abort an open in progress.
for _, methods in ipairs{ stream_methods, ra_methods } do
  for _, name in ipairs{ 'close', 'cancel' } do
    local common = methods[name]
    methods[name] = function(self)
      local st = state_of(self)
      if st.npending > 0 and not st.holder then st.open_aborted = true end
      return common(self)
    end
  end
end

local function check_offset(off, arg)
  if type(off) ~= 'number' or off < 0 or off % 1 ~= 0 then raise_errno(E.EINVAL, arg) end
end

-- size() -> bytes [S], resize(n) [S] for both classes.
local function size(mt)
  return function(self)
    local st = state_of(self, mt)
    local buf = byte_span.new(P.statx_size)
    run_op(st, P.fstat, buf)
    return P.stat_size(buf)
  end
end
local function resize(mt)
  return function(self, n)
    local st = state_of(self, mt)
    check_offset(n, 2)
    run_op(st, P.ftruncate, n)
  end
end
stream_methods.size, ra_methods.size = size(stream_mt), size(ra_mt)
stream_methods.resize, ra_methods.resize = resize(stream_mt), resize(ra_mt)

function stream_methods.read_some(self, buf)
  local st = state_of(self, stream_mt)
  IO.check_read_buffer(buf)
  local n = run_fast(st, FAST_READ, P.read, buf)
  if n == 0 and #buf > 0 then error(IO.eof(), 0) end
  return n
end

function stream_methods.write_some(self, buf)
  local st = state_of(self, stream_mt)
  IO.check_write_buffer(buf)
  if type(buf) == 'string' then return run_op_inline(st, P.write, buf) end
  return run_fast(st, FAST_WRITE, P.write, buf)
end

-- seek(offset[, whence = "set"]) -> new offset; "set", "cur" or "end".
function stream_methods.seek(self, off, whence)
  local st = state_of(self, stream_mt)
  if not st.holder then error(K.system_error(E.EBADF), 0) end
  return P.seek(st.holder, off, whence or 'set')
end

function ra_methods.read_some_at(self, off, buf)
  local st = state_of(self, ra_mt)
  check_offset(off, 2)
  IO.check_read_buffer(buf, 3)
  local n = run_op_inline(st, P.read_at, off, buf)
  if n == 0 and #buf > 0 then error(IO.eof(), 0) end
  return n
end

function ra_methods.write_some_at(self, off, buf)
  local st = state_of(self, ra_mt)
  check_offset(off, 2)
  IO.check_write_buffer(buf, 3)
  return run_op_inline(st, P.write_at, off, buf)
end

local file = {
  stream = IO.constructor(stream_mt),
  random_access = IO.constructor(ra_mt),
  open_flag = P.open_flag,
}

-- The composed ops (like asio's read_at/write_at): loop over the
-- object's *_some_at until `n` bytes (default: the whole buffer) moved.
-- Reads raise eof when the file ends first.
local function count_arg(n, buf, arg)
  if n == nil then return #buf end
  if type(n) ~= 'number' or n < 0 or n % 1 ~= 0 or n > #buf then raise_errno(E.EINVAL, arg) end
  return n
end

local function read_at_least_at(io, off, buf, n)
  check_offset(off, 2)
  IO.check_read_buffer(buf, 3)
  n = count_arg(n, buf, 4)
  local done = 0
  while done < n do
    done = done + io:read_some_at(off + done, buf:slice(done + 1))
  end
  return done
end

local function write_at_least_at(io, off, buf, n)
  check_offset(off, 2)
  IO.check_write_buffer(buf, 3)
  if type(buf) == 'string' then buf = byte_span.append(buf) end
  n = count_arg(n, buf, 4)
  local done = 0
  while done < n do
    done = done + io:write_some_at(off + done, buf:slice(done + 1))
  end
  return done
end

function file.read_all_at(io, off, buf) return read_at_least_at(io, off, buf, nil) end
file.read_at_least_at = function(io, off, buf, n)
  if n == nil then raise_errno(E.EINVAL, 4) end
  return read_at_least_at(io, off, buf, n)
end
function file.write_all_at(io, off, buf) return write_at_least_at(io, off, buf, nil) end
file.write_at_least_at = function(io, off, buf, n)
  if n == nil then raise_errno(E.EINVAL, 4) end
  return write_at_least_at(io, off, buf, n)
end

return file
