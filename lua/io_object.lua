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
-- - Every op id is tracked from submission until its completion was
--   delivered, even when the wait raised (interruption): `release()` of an
--   object with an op pending is EBUSY, `close()`/`cancel()` cancel them
--   all and each completes with `operation_aborted`. The common single op
--   is tracked in the field `solo` (false: none), sparing a table insert
--   per op; further ops meanwhile go to the set `pending`. `npending` counts both.
--   An op that completed during its submission (IO.run_op_inline) was
--   never pending: its result is in hand before anything could track it.
-- - st.fast (IO.run_fast) is used only while st.fast_holder is the
--   current holder, and is emptied before the holder is closed or
--   released, so it never keeps a closed object's descriptor open.
--   st.fast_dp and st.fast_sp (its FFI pointer, for direct reads and for
--   socket ops) are set and cleared with it; they and every other FFI
--   value stay in private state and upvalues here, never in user code's
--   reach.
local K, H = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local may_complete_inline = K.may_complete_inline
-- The running fiber after check_suspend's checks but yieldability's (a C
-- call, which ends a JIT trace): IO.run_fast leaves that one to fast_op.
local fiber_but_yieldable = K.fiber_for_message
local is_byte_span, raw_pcall = K.is_byte_span, K.raw_pcall
local type, error, setmetatable, next, rawequal = type, error, setmetatable, next, rawequal
local newproxy, getmetatable, pcall = newproxy, getmetatable, pcall

local IO = {}
local states = setmetatable({}, { __mode = 'k' })

-- Tracks op `id` of state `st` until `untrack` (see the invariants).
local function track(st, id)
  if not st.solo then st.solo = id else st.pending[id] = true end
  st.npending = st.npending + 1
end
local function untrack(st, id)
  if st.solo == id then st.solo = false else st.pending[id] = nil end
  st.npending = st.npending - 1
end

-- The state of `obj`; with `mt`, `obj` must be of that class (EINVAL).
function IO.state_of(obj, mt)
  local st = states[obj]
  if not st or (mt and st.mt ~= mt) then raise_errno(E.EINVAL, 1) end
  return st
end

-- A new object of class `mt` holding `holder` (nil: not open).
function IO.new_object(mt, holder)
  local obj = setmetatable({}, mt)
  states[obj] = { mt = mt, holder = holder, solo = false, pending = {}, npending = 0 }
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

-- The holder of an open object; a closed one is EBADF.
local function held(st)
  local holder = st.holder
  if not holder then error(K.system_error(E.EBADF), 0) end
  return holder
end

-- Waits for op `id` from fiber `f`, tracked in `st` meanwhile. The wait
-- may raise (interrupted): the op is finished either way, so it is
-- untracked before anything is raised. Returns what raw_pcall gives.
local function await_tracked(f, st, id)
  track(st, id)
  local ok, res = raw_pcall(await_op, f, id)
  untrack(st, id)
  return ok, res
end

-- The outcome of a wait: the result (>= 0, or a job's Lua value), or the
-- error raised.
local function result_of(f, ok, res)
  if not ok then error(res, 0) end
  if type(res) == 'number' and res < 0 then IO.raise_result(IO.cancelled_result(f, res)) end
  return res
end

-- Submits an op with `submit(holder, ...)` (a Rust primitive returning the
-- op id) and waits for it; returns the CQE result (>= 0) or raises.
function IO.run_op(st, submit, ...)
  local f = current()
  check_suspend(f)
  local id = submit(held(st), ...)
  return result_of(f, await_tracked(f, st, id))
end

-- IO.run_op for an op that may complete during its own submission (a
-- read of cached file data, a buffered write): `submit(inline, holder,
-- ...)` returns the op id and, when `inline` was true and the op already
-- completed, its result. The fiber then goes on without suspending: the
-- scheduler allows that only while no other fiber is ready, and for a
-- bounded number of ops between two ring turns (K.may_complete_inline).
-- The op was never pending, so nothing is tracked.
function IO.run_op_inline(st, submit, ...)
  local f = current()
  check_suspend(f)
  local id, res = submit(may_complete_inline(), held(st), ...)
  if res then return result_of(f, true, res) end
  return result_of(f, await_tracked(f, st, id))
end

-- The fast path of a chunk op (src/modules/fast_io.rs): IO.run_op_inline,
-- or IO.run_op for a receive or a pipe's read (never tried inline), for
-- stream read_some, write_some, receive and send of a byte_span without
-- flags. The op is
-- submitted by one raw C function on the object's fast handle (st.fast,
-- made for the holder st.fast_holder) with the buffer cached for its
-- direction (kept referenced in st.fast_rbuf / st.fast_wbuf); on a miss
-- (another buffer, not a byte_span, a state it cannot borrow) the buffer
-- is bound for the next time and `slow(inline, holder, buf)`, the
-- module's primitive, submits it with every error path of its own.
-- FAST_RECV and FAST_READ_WAIT (a pipe's read) are never tried inline.
-- fast_op also returns nil where the coroutine cannot yield, so that
-- check_suspend runs (and raises) on the primitive's path only.
IO.FAST_READ, IO.FAST_WRITE, IO.FAST_RECV, IO.FAST_SEND, IO.FAST_READ_WAIT = 0, 1, 2, 3, 4
-- A TCP socket's read without flags: its receive stream (below), else
-- FAST_RECV.
IO.FAST_STREAM = 5
local FAST_READ, FAST_RECV, FAST_READ_WAIT = IO.FAST_READ, IO.FAST_RECV, IO.FAST_READ_WAIT
local FAST_SEND = IO.FAST_SEND
local fast_op, fast_new, fast_bind, fast_raise = H.fast_op, H.fast_new, H.fast_bind, H.fast_raise

-- Direct reads through LuaJIT's FFI (src/modules/fast_io.rs
-- `read_direct_ffi`): a lua_CFunction call ends the JIT trace, and the
-- rest of the read, the caller's pcall and loop then run in the
-- interpreter; a call through an FFI function pointer compiles into the
-- trace. Set up once per VM, when a handle that may read directly first
-- binds a read buffer (most VMs never load `ffi`). st.fast_dp is the
-- handle as an FFI pointer, set only then and cleared with st.fast. The
-- ffi library, the function pointer and every pointer stay in these
-- upvalues and in private states: user code never sees them.
local fiber_own_thread = K.fiber_own_thread
local direct_read, direct_slot, ffi_cast, socket_op -- nil until set up
local direct_co, direct_thread = false, nil -- one-entry cache
local function direct_setup()
  local ffi = H.load_ffi()
  ffi_cast = ffi.cast
  direct_read = ffi_cast('int (*)(void *, void *, void *)', H.fast_read_direct)
  socket_op = ffi_cast('double (*)(void *, void *, void *, int, int)', H.fast_socket_op)
  direct_slot = ffi_cast('void *', H.fast_slot)
  -- the scheduler's completion array (lua/core/scheduler.lua `carr`),
  -- written by Rust only once the scheduler holds it
  local p, n = H.fast_completions(false)
  K.use_completion_array(ffi_cast('double *', p), n)
  H.fast_completions(true)
end

-- Socket receives and sends through the FFI (`socket_op_ffi`, same file):
-- what fast_op does, compiled into the fiber's trace. st.fast_sp is the
-- handle as an FFI pointer, set when a receive or send first binds a
-- buffer and cleared with st.fast. socket_op answers an op id (>= 2^32:
-- it waits), a result (it completed inline), SOCK_NOT_TAKEN (nothing
-- done: fast_op decides) or SOCK_ERROR_KEPT (fast_raise raises it).
--
-- The fibers' threads as FFI pointers, by coroutine (many fibers take
-- turns here: a one-entry cache would miss on every op).
local thread_ptrs = setmetatable({}, { __mode = 'k' })
local ID_MIN = 4294967296
local await_op_solo, raise_core = K.await_op_solo, K.raise_core
local SOCK_NOT_TAKEN, SOCK_ERROR_KEPT = H.fast_not_taken, H.fast_error_kept
local fast_direct, fast_thread, fast_ffi_ok = H.fast_direct, H.fast_thread, H.fast_ffi_ok

-- Binds `buf` as the handle's buffer of its direction, for the next op
-- of `kind` (the miss branch of IO.run_fast).
local function bind_buffer(st, h, kind, buf)
  local dir = kind % 2
  if fast_bind(h, buf, dir) then
    if dir == 0 then
      st.fast_rbuf = buf
      if kind == FAST_READ and not st.fast_dp and fast_direct(h) then
        if not direct_read then direct_setup() end
        st.fast_dp = ffi_cast('void *', h)
      end
    else
      st.fast_wbuf = buf
    end
    if (kind == FAST_RECV or kind == FAST_SEND) and not st.fast_sp and fast_ffi_ok() then
      if not socket_op then direct_setup() end
      st.fast_sp = ffi_cast('void *', h)
    end
  end
end

---------------------------------------------------------------------------
-- Receive streams (src/executor/recv_multi.rs): a TCP socket's reads
-- without flags take the bytes a multishot receive into the executor's
-- provided buffers queued for the socket; only a read that finds the
-- queue empty and no receive armed submits one, and it stays armed
-- across reads.
--
-- Invariants:
-- - st.ms: nil until the first such read, then true (the handle has a
--   stream) or false (no multishot receives on this executor: plain
--   receives for good). Reset with the handle.
-- - One fiber at a time waits for the armed op's next CQE
--   (st.ms_reader, counted in st.npending); others wait behind it in
--   st.ms_queue (FIFO) and retry when it leaves. A waiter that is
--   interrupted only leaves: the op stays armed, its bytes stay queued.
-- - close() cancels the op (the handle's fast_clear) and drops the queued
--   bytes; cancel() cancels it and keeps them. A waiter that sees
--   st.cancels move raises operation_aborted, as a cancelled receive.
-- - release() (and so sending the fd elsewhere) first cancels the op and
--   waits for its last CQE (the kernel would keep receiving into this
--   ring after the fd left), then refuses with EBUSY while bytes are
--   queued: they cannot be handed back to the socket.
-- - receive(buf, flags) quiesces the stream the same way first; queued
--   bytes come before the kernel's (MSG_PEEK copies them).
local FAST_STREAM = IO.FAST_STREAM
local await_shot, wake_f, suspend_f = K.shots.await, K.wake, K.suspend
local stream_read_slow, stream_info = H.stream_read, H.stream_info
local SOCK_YIELD_AFTER, yield_ready = H.fast_yield_after, K.shots.yield_ready
local may_take_queued = K.shots.may_take_queued
local STREAM_READY = {}
local tremove = table.remove

local function leave_stream_queue(f, st)
  local q = st.ms_queue
  for i = 1, #q do
    if q[i] == f then tremove(q, i) break end
  end
  wake_f(f, K.INTERRUPTED)
end

-- Interrupter of the fiber waiting for the stream's op: it leaves, and
-- what the op's CQE may already have put in its buffer is taken back.
local unwatch_shot, stream_unwait = K.shots.unwatch, H.stream_unwait
local function leave_stream(f, st)
  unwatch_shot(f, st.ms_wait)
  if st.fast then stream_unwait(st.fast, st.ms_wait) end
  wake_f(f, K.INTERRUPTED)
end

-- The end of a wait whose result `res` delivered nothing (< 0): returns
-- to read again, or raises (an error that ended the stream, or
-- operation_aborted after cancel()/close() since `cancels`).
local STREAM_RETRY = -E.EAGAIN
local function stream_retry(st, res, cancels)
  if res == STREAM_RETRY then return end
  if res == -E.ECANCELED then
    if st.cancels ~= cancels then error(K.operation_aborted(), 0) end
    return
  end
  IO.raise_result(res)
end

-- Waits from `f` for the next CQE of the stream's op `id` (or, when
-- another fiber waits for it, for that fiber to leave): the count
-- delivered into the reader's buffer (>= 0), or nil to read again.
-- Waits from `f` behind the fiber that waits for the stream's op, until
-- it leaves (only that fiber's buffer may be the op's target).
local function queue_behind(st, f)
  local q = st.ms_queue
  if not q then q = {} st.ms_queue = q end
  q[#q + 1] = f
  st.npending = st.npending + 1
  local r = suspend_f(f, leave_stream_queue, st)
  st.npending = st.npending - 1
  if r == K.INTERRUPTED then raise_core('interrupted') end
end

local function stream_wait(st, f, id)
  if st.ms_reader then
    queue_behind(st, f)
    return nil
  end
  local cancels = st.cancels
  st.ms_reader, st.ms_wait, st.npending = f, id, st.npending + 1
  local res, interrupted = await_shot(f, id, leave_stream, st)
  st.ms_reader, st.npending = nil, st.npending - 1
  local q = st.ms_queue
  if q and q[1] then wake_f(tremove(q, 1), STREAM_READY) end
  if interrupted then raise_core('interrupted') end
  if res >= 0 then return res end
  stream_retry(st, res, cancels)
  return nil
end

-- A read of the stream into `buf`: the count (0: EOF or an empty
-- buffer), or nil when this executor has none (st.ms set false).
local function read_stream(st, f, h, buf)
  while true do
    -- (a read here would make this fiber's buffer the op's target)
    while st.ms_reader do
      check_suspend(f)
      queue_behind(st, f)
    end
    local r
    local sp = st.fast_sp
    local inline = may_take_queued()
    if sp and rawequal(buf, st.fast_rbuf) then
      local co = fiber_own_thread()
      if co then
        local th = thread_ptrs[co]
        if not th then
          th = ffi_cast('void *', fast_thread(co))
          thread_ptrs[co] = th
        end
        r = socket_op(direct_slot, th, sp, FAST_STREAM, inline and 1 or 0)
      end
    end
    if r == nil or r == SOCK_NOT_TAKEN then
      check_suspend(f)
      r = stream_read_slow(h, buf, inline)
      if r == SOCK_NOT_TAKEN then
        st.ms = false
        return nil
      end
      st.ms = true
      if not rawequal(buf, st.fast_rbuf) then bind_buffer(st, h, FAST_RECV, buf) end
    end
    if r >= ID_MIN then
      local n = stream_wait(st, f, r)
      if n then return n end
    elseif r >= SOCK_YIELD_AFTER then
      yield_ready()
      return r - SOCK_YIELD_AFTER
    elseif r >= 0 then
      return r
    elseif r == SOCK_ERROR_KEPT then
      fast_raise(h)
    else
      IO.raise_result(r)
    end
  end
end

-- Cancels the stream's armed op and waits for its last CQE (from fiber
-- `f`); returns the bytes queued.
local function quiesce_stream(st, f)
  local h = st.fast
  if not h then return 0 end
  while true do
    local id, buffered = stream_info(h)
    if not id then return buffered end
    check_suspend(f)
    rt.cancel(id)
    stream_wait(st, f, id)
  end
end

-- receive(buf, flags) of a TCP socket (lua/ip.lua): the stream's queued
-- bytes first. `recv(n0)` is the kernel's receive with the flags into
-- the rest of buf from n0 + 1 (none when buf is full).
function IO.receive_flagged(st, buf, flags, recv)
  if st.ms and st.holder then
    local f = current()
    -- a fiber waiting in read_some would re-arm what this cancels
    if st.ms_reader then raise_errno(E.EBUSY) end
    local buffered = quiesce_stream(st, f)
    if buffered > 0 and #buf > 0 then
      local peek = flags % 4 >= 2 -- MSG_PEEK
      local n = H.stream_take(st.fast, buf, peek)
      -- MSG_WAITALL: the rest from the kernel
      if not peek and flags % 512 >= 256 and n < #buf then return n + recv(n) end
      return n
    end
  end
  return recv(0)
end

function IO.run_fast(st, kind, slow, buf)
  local f = fiber_but_yieldable()
  local holder = held(st)
  local h = st.fast
  if st.fast_holder ~= holder then
    h = fast_new(holder)
    st.fast, st.fast_holder, st.fast_rbuf, st.fast_wbuf, st.fast_dp = h, holder, nil, nil, nil
    st.fast_sp, st.ms = nil, nil
  end
  if kind == FAST_STREAM then
    -- The common case in straight lines (read_stream's loop, whose trace
    -- exits at every turn, cost ~1,000 instructions per echoed message):
    -- the bound buffer, nobody else waiting; one read, and when it waits,
    -- the CQE's bytes come in the buffer with the wake.
    local sp = st.fast_sp
    if st.ms and sp and not st.ms_reader and rawequal(buf, st.fast_rbuf) then
      local co = fiber_own_thread()
      local th = co and thread_ptrs[co]
      if th then
        local r = socket_op(direct_slot, th, sp, FAST_STREAM, may_take_queued() and 1 or 0)
        if r >= ID_MIN then
          -- (stream_wait, inlined)
          local cancels = st.cancels
          st.ms_reader, st.ms_wait, st.npending = f, r, st.npending + 1
          local res, interrupted = await_shot(f, r, leave_stream, st)
          st.ms_reader, st.npending = nil, st.npending - 1
          local q = st.ms_queue
          if q and q[1] then wake_f(tremove(q, 1), STREAM_READY) end
          if interrupted then raise_core('interrupted') end
          if res >= 0 then return res end
          stream_retry(st, res, cancels)
        elseif r >= 0 then
          if r < SOCK_YIELD_AFTER then return r end
          yield_ready()
          return r - SOCK_YIELD_AFTER
        elseif r == SOCK_ERROR_KEPT then
          fast_raise(h)
        elseif r > SOCK_NOT_TAKEN then
          IO.raise_result(r)
        end
        -- (waits again or was not taken: the loop below)
      end
    end
    if st.ms ~= false then
      local n = read_stream(st, f, h, buf)
      if n then return n end
    end
    kind = FAST_RECV
  end
  local inline = kind ~= FAST_RECV and kind ~= FAST_READ_WAIT and may_complete_inline()
  local sp = st.fast_sp
  if sp and (kind == FAST_SEND and rawequal(buf, st.fast_wbuf)
      or kind == FAST_RECV and rawequal(buf, st.fast_rbuf)) then
    local co = fiber_own_thread()
    if co then
      local th = thread_ptrs[co]
      if not th then
        th = ffi_cast('void *', fast_thread(co))
        thread_ptrs[co] = th
      end
      local r = socket_op(direct_slot, th, sp, kind, inline and 1 or 0)
      if r >= ID_MIN then
        if st.solo then return result_of(f, await_tracked(f, st, r)) end
        -- (no protected call: see K.await_op_solo)
        local res, interrupted = await_op_solo(f, r, st)
        if interrupted then raise_core('interrupted') end
        if res < 0 then IO.raise_result(IO.cancelled_result(f, res)) end
        return res
      end
      if r >= 0 then return r end
      if r > SOCK_NOT_TAKEN then return result_of(f, true, r) end
      if r == SOCK_ERROR_KEPT then fast_raise(h) end
    end
  end
  local dp, tried = st.fast_dp, false
  if dp and inline and rawequal(buf, st.fast_rbuf) and kind == FAST_READ then
    local co = fiber_own_thread()
    if co then
      if co ~= direct_co then
        direct_co, direct_thread = co, ffi_cast('void *', fast_thread(co))
      end
      local n = direct_read(direct_slot, direct_thread, dp)
      if n > 0 then return n end
      tried = n < 0
    end
  end
  local id, res = fast_op(h, buf, inline, kind, tried)
  -- Completed inline, the common case, checked first and without calling
  -- result_of (`res` is a CQE result, a number): what follows fast_op runs
  -- in the interpreter (see pcall in lua/core/scheduler.lua).
  if res and res >= 0 then return res end
  if id == nil then
    check_suspend(f)
    bind_buffer(st, h, kind, buf)
    id, res = slow(inline, holder, buf)
  elseif id == false then
    fast_raise(h)
  end
  if res then return result_of(f, true, res) end
  return result_of(f, await_tracked(f, st, id))
end

-- Lets go of the fast handle (its clone of the descriptor) before the
-- holder is closed or released.
local fast_clear = H.fast_clear
local function drop_fast(st)
  local h = st.fast
  if h then
    fast_clear(h)
    st.fast, st.fast_holder, st.fast_rbuf, st.fast_wbuf, st.fast_dp = nil, nil, nil, nil, nil
    st.fast_sp, st.ms = nil, nil
  end
end

-- An op of an object that has no descriptor yet (an open): tracked like
-- any op, so close()/cancel() abort it and release() is EBUSY meanwhile.
-- Returns the result (an fd object for an open).
function IO.run_op_unheld(st, submit, ...)
  local f = current()
  check_suspend(f)
  local id = submit(...)
  return result_of(f, await_tracked(f, st, id))
end

-- IO.run_op for an op whose completion carries more than its result (an
-- accepted fd, a received message's sender and fds): `take(id)` fetches
-- that data once. It is called after every wait, returned or raised, so
-- data of an op whose fiber was interrupted is dropped (its fds closed) at
-- once. Returns the result followed by what `take` returned.
function IO.run_op_taking(st, take, submit, ...)
  local f = current()
  check_suspend(f)
  local id = submit(held(st), ...)
  local ok, res = await_tracked(f, st, id)
  if ok and not (type(res) == 'number' and res < 0) then return res, take(id) end
  take(id)
  return result_of(f, ok, res)
end

-- An op that acts on several objects (send_file's splice from a file into
-- the socket's pipe): submitted with `submit(...)` (no holder prepended)
-- and tracked in each state of `states`, so close()/cancel() of any of
-- them aborts it and release() of any is EBUSY meanwhile. Returns the
-- result (>= 0) or raises, as IO.run_op.
function IO.run_op_tracked(states, submit, ...)
  local f = current()
  check_suspend(f)
  local id = submit(...)
  for i = 1, #states do track(states[i], id) end
  local ok, res = raw_pcall(await_op, f, id)
  for i = 1, #states do untrack(states[i], id) end
  return result_of(f, ok, res)
end

-- An op that belongs to no object (a file system call): submit, wait,
-- return the result (a number, or a job's Lua value) or raise.
function IO.run_free(submit, ...)
  local f = current()
  check_suspend(f)
  local id = submit(...)
  return result_of(f, raw_pcall(await_op, f, id))
end

-- filesystem.path objects -> their string (lua/core/modules.lua, which
-- makes _FILE, and lua/filesystem.lua fill it).
IO.paths = K.path_strings

-- Argument `arg` as a path string: a string or a filesystem.path. NUL
-- bytes are refused by the primitives (EINVAL too).
function IO.path_arg(v, arg)
  if type(v) == 'string' then return v end
  local s = IO.paths[v]
  if s then return s end
  raise_errno(E.EINVAL, arg)
end

-- Also counts the cancellations in st.cancels, so an operation made of
-- several ops (send_file) sees one that came between its ops.
function IO.cancel_all(st)
  st.cancels = (st.cancels or 0) + 1
  if st.solo then rt.cancel(st.solo) end
  for id in next, st.pending do rt.cancel(id) end
end

-- close, cancel, release and assign for a class's `methods`.
function IO.common_methods(methods)
  function methods.close(self)
    local st = IO.state_of(self)
    IO.cancel_all(st)
    drop_fast(st)
    if st.holder then
      H.close(st.holder)
      st.holder = nil
    end
  end
  function methods.cancel(self)
    local st = IO.state_of(self)
    IO.cancel_all(st)
    -- the receive stream's op (its queued bytes stay)
    if st.ms and st.fast then
      local id = stream_info(st.fast)
      if id then rt.cancel(id) end
    end
  end
  function methods.release(self)
    local st = IO.state_of(self)
    if st.npending > 0 then raise_errno(E.EBUSY) end
    if not st.holder then error(K.system_error(E.EBADF), 0) end
    if st.ms then
      local buffered = quiesce_stream(st, current())
      if st.npending > 0 then raise_errno(E.EBUSY) end
      if buffered > 0 then
        local e = K.generic_error(E.EBUSY)
        e.bytes = buffered
        e.reason = 'received bytes are queued for this socket: read them before release()'
        error(e, 0)
      end
    end
    drop_fast(st)
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

-- Argument checks shared by read and write methods. A byte_span's locked
-- metatable answers getmetatable() with 'byte_span': checking that first
-- spares the common case a call into Rust. A userdata made by newproxy can
-- claim that name too; it passes here, but every primitive converts its
-- buffer itself and refuses anything but a byte_span (EINVAL, same
-- argument), so the check stays exact in what it lets reach the kernel.
function IO.check_read_buffer(buf, arg)
  if getmetatable(buf) == 'byte_span' and type(buf) == 'userdata' then return end
  if not is_byte_span(buf) then raise_errno(E.EINVAL, arg or 2) end
end
function IO.check_write_buffer(buf, arg)
  local t = type(buf)
  if t == 'string' or (t == 'userdata' and getmetatable(buf) == 'byte_span') then return end
  if not is_byte_span(buf) then raise_errno(E.EINVAL, arg or 2) end
end

---------------------------------------------------------------------------
-- io-net: acceptors of the socket modules (lua/ip.lua, lua/unix.lua).
-- accept() runs on one multishot ring accept per acceptor, armed by the
-- first accept() and kept armed: every connection the kernel accepts is
-- queued (in Rust, under the op's id) until an accept() takes it, so a loop
-- of accepts costs no submission per connection.
--
-- Invariants:
-- - st.multi is the armed op (nil: none); st.ids lists it after the ended
--   ops whose connections were not all taken yet; accept() takes from them
--   in that order (the kernel's order).
-- - While fibers wait (st.waiters, FIFO), one K.watch_op registration
--   (st.watching) waits for the op's next CQE. The op itself keeps nothing
--   alive: with nobody waiting there is no registration, and the VM can
--   end (teardown cancels the op). When the last waiter leaves
--   (interrupted), the op is cancelled for the same reason ('idle': the
--   next accept() re-arms).
-- - close() cancels the op and drops every connection it queued or still
--   queues (closes them, as closing a listener drops its backlog);
--   release() with an op armed is EBUSY (cancel() first); an acceptor
--   collected while armed does what close() does (st.guard's __gc).
-- - A connection the peer aborted before it was accepted ends the
--   multishot op with ECONNABORTED: skipped (re-armed) unless
--   enable_connection_aborted is set (asio's behaviour).
-- `P` is the socket primitives (src/modules/socket.rs); `methods` and `mt`
-- the acceptor class, `socket_mt` the class of accepted sockets.
function IO.multishot_acceptor(P, methods, mt, socket_mt)
  local READY = {}
  local INTERRUPTED = K.INTERRUPTED
  local wake, suspend, watch_op, cancel_op = K.wake, K.suspend, K.watch_op, rt.cancel
  local tremove = table.remove

  -- The next queued connection's holder, or nil.
  local function take_queued(st)
    local ids = st.ids
    while ids[1] do
      local _, holder = P.take(ids[1])
      if holder then return holder end
      if ids[1] == st.multi then return nil end
      tremove(ids, 1) -- ended and drained
    end
  end

  local function discard_all(st)
    for i = 1, #st.ids do P.drop_outputs(st.ids[i]) end
    st.ids = {}
  end

  -- The op's next CQE arrived (K.watch_op callback of state `st`).
  local function multi_cqe(st, res)
    st.watching = false
    local id = st.multi
    if id and not P.in_flight(id) then st.multi = nil end
    local waiters = st.waiters
    if res < 0 then
      -- the op ended: every waiter learns how (after an idle cancel they
      -- simply try again)
      local value = res
      if res == -E.ECANCELED and st.disarm == 'idle' then value = READY end
      st.disarm = nil
      st.waiters = {}
      for i = 1, #waiters do wake(waiters[i], value) end
      return
    end
    -- one waiter per queued connection (several CQEs may have come at once)
    local n = 0
    for i = 1, #st.ids do n = n + P.queued(st.ids[i]) end
    while n > 0 and waiters[1] do
      wake(tremove(waiters, 1), READY)
      n = n - 1
    end
    if waiters[1] and st.multi then
      st.watching = true
      watch_op(st.multi, st.on_cqe)
    end
  end

  -- Interrupter of a waiting accept().
  local function leave_accept(f, st)
    local waiters = st.waiters
    for i = 1, #waiters do
      if waiters[i] == f then tremove(waiters, i) break end
    end
    wake(f, INTERRUPTED)
    if not waiters[1] and st.watching and st.multi and not st.disarm then
      st.disarm = 'idle'
      cancel_op(st.multi)
    end
  end

  local function multishot_state(st)
    if st.ids then return end
    st.ids, st.waiters = {}, {}
    st.on_cqe = function(res) multi_cqe(st, res) end
    local guard = newproxy(true)
    getmetatable(guard).__gc = function()
      if st.multi then pcall(cancel_op, st.multi) end
      for i = 1, #st.ids do pcall(P.drop_outputs, st.ids[i]) end
    end
    st.guard = guard
  end

  function methods.accept(self)
    local st = IO.state_of(self, mt)
    multishot_state(st)
    while true do
      -- an interruption point even when a connection is already queued
      local f = K.current()
      K.check_suspend(f)
      local h = st.holder
      if not h then error(K.system_error(E.EBADF), 0) end
      local holder = take_queued(st)
      if holder then return IO.new_object(socket_mt, holder) end
      if st.multi and not P.in_flight(st.multi) then st.multi = nil end
      if not st.multi then
        st.multi = P.accept_multi(h)
        st.ids[#st.ids + 1] = st.multi
        st.disarm = nil
      end
      if not st.watching then
        st.watching = true
        watch_op(st.multi, st.on_cqe)
      end
      local waiters = st.waiters
      waiters[#waiters + 1] = f
      st.npending = st.npending + 1
      local r = suspend(f, leave_accept, st)
      st.npending = st.npending - 1
      if r == INTERRUPTED then K.raise_core('interrupted') end
      if r ~= READY and not (r == -E.ECONNABORTED and not st.connection_aborted) then
        IO.raise_result(r)
      end
    end
  end

  -- close() and cancel() reach the armed op too (it is not tracked
  -- while nobody waits).
  local common_close, common_cancel, common_release =
    methods.close, methods.cancel, methods.release
  function methods.close(self)
    local st = IO.state_of(self, mt)
    if st.multi then
      st.disarm = 'user'
      cancel_op(st.multi)
    end
    if st.ids then discard_all(st) end
    common_close(self)
  end
  function methods.cancel(self)
    local st = IO.state_of(self, mt)
    if st.multi then
      st.disarm = 'user'
      cancel_op(st.multi)
    end
    common_cancel(self)
  end
  function methods.release(self)
    local st = IO.state_of(self, mt)
    if st.multi and P.in_flight(st.multi) then raise_errno(E.EBUSY) end
    if st.ids then discard_all(st) end
    return common_release(self)
  end
end

IO.class = K.class
return IO
