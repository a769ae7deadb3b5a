-- pipe (spec/io.md "pipe"): read_stream and write_stream objects over a
-- pipe's two ends, their reads and writes being ring ops
-- (src/modules/pipe.rs gives the primitives P).
--
-- Invariants: an object's state (its descriptor holder and the ids of its
-- ops in flight) lives in a weak-keyed map out of user code's reach;
-- methods look their argument up there, so a table that only claims the
-- class name gets EINVAL. Every op id is in `pending` from submission until
-- its completion was delivered, even when the wait raised (interruption).
local K, P = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local is_byte_span, raw_pcall = K.is_byte_span, K.raw_pcall
local type, error, setmetatable, next = type, error, setmetatable, next

local states = setmetatable({}, { __mode = 'k' })

-- The state of `obj`, which must be a stream of class `mt` when given.
local function state_of(obj, mt)
  local st = states[obj]
  if not st or (mt and st.mt ~= mt) then raise_errno(E.EINVAL, 1) end
  return st
end

local function eof() return K.new_error(K.categories['asio.misc'], 2) end
local function already_open() return K.new_error(K.categories['asio.misc'], 1) end

-- Submits an op with `submit(holder, buf)` and waits for it. The wait may
-- raise (interrupted); the op is finished either way, so it leaves
-- `pending` before anything is raised.
local function run_op(st, submit, buf)
  local f = current()
  check_suspend(f)
  local holder = st.holder
  if not holder then error(K.system_error(E.EBADF), 0) end
  local id = submit(holder, buf)
  st.pending[id] = true
  st.npending = st.npending + 1
  local ok, res = raw_pcall(await_op, f, id)
  st.pending[id] = nil
  st.npending = st.npending - 1
  if not ok then error(res, 0) end
  if res < 0 then
    if res == -E.ECANCELED then error(K.operation_aborted(), 0) end
    error(K.system_error(-res), 0)
  end
  return res
end

local function cancel_all(st)
  for id in next, st.pending do rt.cancel(id) end
end

local function common_methods(methods)
  function methods.close(self)
    local st = state_of(self)
    -- Pending ops complete with operation_aborted; each keeps the
    -- descriptor open until its completion.
    cancel_all(st)
    if st.holder then
      P.close(st.holder)
      st.holder = nil
    end
  end
  function methods.cancel(self)
    cancel_all(state_of(self))
  end
  function methods.release(self)
    local st = state_of(self)
    if st.npending > 0 then raise_errno(E.EBUSY) end
    if not st.holder then error(K.system_error(E.EBADF), 0) end
    local fd = P.release(st.holder)
    st.holder = nil
    return fd
  end
  function methods.assign(self, fd)
    local st = state_of(self)
    if st.holder then error(already_open(), 0) end
    st.holder = P.adopt(fd, 2)
  end
end

local props = {
  is_open = function(self) return state_of(self).holder ~= nil end,
}

local read_methods, write_methods = {}, {}
common_methods(read_methods)
common_methods(write_methods)
local read_mt = K.class('pipe.read_stream', read_methods, props)
local write_mt = K.class('pipe.write_stream', write_methods, props)

function read_methods.read_some(self, buf)
  local st = state_of(self, read_mt)
  if not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  local n = run_op(st, P.read, buf)
  if n == 0 and #buf > 0 then error(eof(), 0) end
  return n
end

function write_methods.write_some(self, buf)
  local st = state_of(self, write_mt)
  if type(buf) ~= 'string' and not is_byte_span(buf) then raise_errno(E.EINVAL, 2) end
  return run_op(st, P.write, buf)
end

local function new_object(mt, holder)
  local obj = setmetatable({}, mt)
  states[obj] = { mt = mt, holder = holder, pending = {}, npending = 0 }
  return obj
end

local function constructor(mt)
  return {
    new = function(fd)
      if fd == nil then return new_object(mt, nil) end
      return new_object(mt, P.adopt(fd, 1))
    end,
  }
end

local pipe = {
  read_stream = constructor(read_mt),
  write_stream = constructor(write_mt),
}

function pipe.pair()
  local r, w = P.pair()
  return new_object(read_mt, r), new_object(write_mt, w)
end

return pipe
