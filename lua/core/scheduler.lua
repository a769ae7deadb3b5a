-- Fibers on LuaJIT coroutines, driven by a FIFO run queue, waiting on the
-- actor's io_uring.
--
-- Invariants:
-- * One run queue per VM; every wake-up appends (FIFO). A fiber is in the
--   queue at most once: only `wake`/`schedule` enqueue, and a suspended
--   fiber is woken exactly once (its interrupter is cleared by the wake).
-- * A fiber suspends only by yielding SUSPEND (or YIELDED: queue me again;
--   NOP_WAIT: join the sleep(0) group the next turn's NOP wakes)
--   from its own coroutine; user coroutines in between forward the yield
--   (coroutine.resume wrapper) and are "busy" meanwhile.
-- * A suspending function checks that the fiber can yield (not inside a
--   callback called from C) before it registers anything; a refused
--   suspension raises and changes no state (see "Suspension points").
-- * Fiber states: ready (queued) -> running -> suspended | finished.
--   A fiber takes a pooled coroutine when it first runs; a finished
--   fiber's coroutine goes back to the pool (at most POOL_MAX idle ones).
-- * Nothing grows with history: wait queues are O(1) linked lists, and
--   tables a burst enlarged are replaced once empty.
-- * Reports and error inspection never run user code unprotected.
-- * An op in flight on the ring maps to exactly one waiting callback
--   (`op_waiters`, keyed by slot index; see there); `inflight` counts
--   them. The VM ends when the run queue is empty and nothing is in
--   flight (nothing can wake a fiber any more).
--   An op completed inline (K.may_complete_inline) never reaches them.
local K = ...
local rt = K.rt
local debug_traceback, getfenv_u, setfenv_u = K.debug.traceback, K.debug.getfenv, K.debug.setfenv
-- co_isyieldable is false inside a finalizer and inside callbacks from C
-- (table.sort, string.gsub, metamethods called from C).
local co_create, co_resume, co_yield, co_status, co_running, co_isyieldable =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status, coroutine.running,
  coroutine.isyieldable
local raw_pcall, raw_xpcall = pcall, xpcall
-- string.gsub before the stub below replaces it (reports call this one).
local raw_gsub = string.gsub
local select, type, error, setmetatable, tostring, unpack, rawget =
  select, type, error, setmetatable, tostring, unpack, rawget
local pack = function(...) return { n = select('#', ...), ... } end
local raise_core, raise_errno = K.raise_core, K.raise_errno
local normalize_error, is_interrupted = K.normalize_error, K.is_interrupted
local E = rt.errno
-- LURING_LOG=debug: fiber events (fixed at VM start, so free when off).
local LOG = rt.log_enabled
local log = LOG and rt.log
-- Each event's text is a constant of a function made only when logging is
-- on: with it off, no VM keeps those strings (docs/performance.md
-- "rss-str").
local log_spawned = LOG and function(f, id)
  log('fiber spawned', id, f.module and 'module' or nil)
end
local log_finished = LOG and function(id, failed, err)
  log('fiber finished', id, failed and K.error_message(err) or 'ok')
end

-- Sentinels yielded to the scheduler; user code can never produce them.
-- YIELDED: suspended and to be queued again at once (this_fiber.yield).
-- NOP_WAIT: suspended until the next ring turn's NOP completes (sleep(0)).
local SUSPEND, FINISHED, TERMINATE, YIELDED, NOP_WAIT = {}, {}, {}, {}, {}
local INTERRUPTED = {}   -- wake value meaning "your wait was interrupted"
K.SUSPEND, K.TERMINATE, K.INTERRUPTED = SUSPEND, TERMINATE, INTERRUPTED
K.co_yield = co_yield

-- The four busiest fields of a fiber record live in its array part, named
-- by these indices (see "Fiber records and handles").
local W1, CO, RESULTS, INTERRUPTER = 1, 2, 3, 4
K.W1, K.RESULTS, K.INTERRUPTER = W1, RESULTS, INTERRUPTER

-- Every fiber thread carries the globals of the code that spawned it
-- (lua/core/modules.lua); the runtime's own globals never. NO_GLOBALS is
-- the sealed, empty environment of the main thread after boot and of
-- fibers the runtime starts on its own.
local REAL_G, raw_getfenv = _G, getfenv
local NO_GLOBALS = setmetatable({}, {
  __newindex = function() raise_errno(E.EPERM) end,
  __metatable = 'no globals',
})
K.NO_GLOBALS = NO_GLOBALS

local function hexid(obj)
  return (tostring(obj):match('0x%x+')) or tostring(obj)
end
K.hexid = hexid

---------------------------------------------------------------------------
-- Run queue
-- Fibers woken since the current batch started, in order. The loop swaps
-- it with `spare` and runs the batch, so both stay plain arrays indexed
-- from 1 (a head/tail pair that only grows would push LuaJIT into the
-- table's hash part and rehash over and over).
local runq, rq_n, spare = {}, 0, {}
-- Fibers of the batch being run that come after the running one.
local batch_rest = 0
local current            -- fiber record running now (nil in the scheduler)
local vm_report_printed = false
-- Forbid-suspend levels plus interrupted fibers, over unfinished fibers:
-- while zero, this_fiber.yield can skip reading those fields.
local guards = 0

-- The rest of this chunk runs inside `define` (called at the end). Why:
-- making a closure looks each captured local of the running function up
-- in LuaJIT's list of open upvalues, from the newest down (func_finduv),
-- and the locals above are captured by most of the ~90 functions below,
-- each lookup walking past every local captured since. As upvalues of
-- `define` they are copied from its closure instead: 20k list steps per
-- boot -> 6k, -8% of a VM's boot instructions (docs/performance.md
-- "bootcut"). Nothing else changes: a closure shares the variable either
-- way. (A function has at most 60 upvalues: `define` now has 52.)
local function define()

-- Wake a suspended fiber with `a`, the value its suspend returns (one
-- value is enough for every wake-up: op results, INTERRUPTED, BROKEN);
-- commits the wake so a later interrupt() cannot also wake it. Queues it
-- (w1 holds the wake value).
local function wake(f, a)
  f[INTERRUPTER] = false
  f[W1] = a
  rq_n = rq_n + 1
  runq[rq_n] = f
end
K.wake = wake

-- The running fiber. Finalizers may run where none is (in the scheduler,
-- while the VM closes): fiber-bound functions then fail with a clear error.
local function no_fiber()
  error('no fiber is running here (a __gc finalizer runs outside any fiber)', 0)
end
function K.current()
  local f = current
  if not f then no_fiber() end
  return f
end
-- The running fiber or nil, for callers that raise their own error.
function K.fiber_or_nil() return current end

-- Set once the loop has ended for good: what is spawned then never runs.
local run_over = false
local VM_CLOSING = 'the VM is closing: runtime functions are unavailable in finalizers run at exit'

---------------------------------------------------------------------------
-- C-stack depth. LuaJIT sets no limit of its own on calls that recurse
-- through C: deeply nested coroutine.resume/wrap or string.gsub callbacks
-- overflowed the thread's stack and killed the process. The runtime's
-- wrappers count them and fail past C_DEPTH_LIMIT with 'C stack overflow',
-- as Lua 5.1 does (LUAI_MAXCCALLS). Every place that catches errors (pcall,
-- xpcall, scope, resume, a fiber's own xpcall) restores the depth it saw,
-- so an error unwinding through counted calls leaks nothing.
local C_DEPTH_LIMIT = 200
local c_depth = 0

---------------------------------------------------------------------------
-- Out of memory. LuaJIT, unlike Lua 5.2+, does not collect garbage when an
-- allocation fails: the code that catches the error would likely fail again
-- on the garbage the failed work left. Where the runtime catches a memory
-- error it collects first, repeatedly while that still frees a tenth of the
-- heap: each cycle only halves LuaJIT's string buffer, which a failed huge
-- string.rep or table.concat leaves at hundreds of megabytes. A collection
-- can itself fail for want of memory (LuaJIT resizes its string table
-- while sweeping, before the garbage is freed): caught, and the next cycle
-- goes on from where that one stopped.
local NOT_ENOUGH_MEMORY = 'not enough memory' -- LuaJIT's LUA_ERRMEM message
local emergency_gc
do
  local collect = collectgarbage
  local function cycles()
    local before = collect('count')
    for _ = 1, 16 do
      raw_pcall(collect)
      local now = collect('count')
      if now > before * 0.9 then break end
      before = now
    end
  end
  emergency_gc = function()
    -- Never raises: a failed step is retried by the next attempt.
    for _ = 1, 4 do
      if raw_pcall(cycles) then return end
    end
  end
end

---------------------------------------------------------------------------
-- Wait queues: FIFO doubly linked lists, O(1) push, pop and removal of any
-- member. The links live in two VM-wide tables keyed by the member (a
-- fiber record or an op id), so a member is in at most one queue at a
-- time, and a fiber record gains no fields. A push may name the queue's
-- `owner` (the object user code holds): the owner is in `waited` (owner ->
-- order of registration) exactly while the queue has members, so the
-- deadlock report looks only at objects with waiters now. The queue refers
-- to its owner only meanwhile: a queue kept in an object's private state
-- (lua/core/sync.lua, a weak-keyed map) then never keeps that object alive.
local q_next, q_prev = {}, {}
local q_members, q_peak = 0, 0
local waited, waited_seq = {}, 0
K.waited = waited

local function q_new()
  return { head = false, tail = false, n = 0, owner = false }
end
K.q_new = q_new

-- `owner`: nil, or the object to report while `q` has members (the same
-- one on every push).
local function q_push(q, x, owner)
  local t = q.tail
  q_prev[x], q_next[x] = t, false
  if t then
    q_next[t] = x
  else
    q.head = x
    if owner then
      q.owner = owner
      waited_seq = waited_seq + 1
      waited[owner] = waited_seq
    end
  end
  q.tail = x
  q.n = q.n + 1
  q_members = q_members + 1
  if q_members > q_peak then q_peak = q_members end
end
K.q_push = q_push

local function q_unlink(q, x)
  local p, n = q_prev[x], q_next[x]
  q_prev[x], q_next[x] = nil, nil
  if p then q_next[p] = n else q.head = n end
  if n then q_prev[n] = p else q.tail = p end
  q.n = q.n - 1
  if not q.head and q.owner then
    waited[q.owner] = nil
    q.owner = false
  end
  q_members = q_members - 1
  if q_members == 0 and q_peak > 1024 then
    -- A table never shrinks by itself: drop the capacity a burst left.
    q_next, q_prev, q_peak = {}, {}, 0
  end
end

-- Removes and returns the first member, or false when empty.
local function q_pop(q)
  local x = q.head
  if x then q_unlink(q, x) end
  return x
end
K.q_pop = q_pop

-- Removes `x` if it is in `q` (it must not be in another queue).
local function q_remove(q, x)
  if q_prev[x] == nil then return false end
  q_unlink(q, x)
  return true
end
K.q_remove = q_remove

---------------------------------------------------------------------------
-- Scopes: per Lua thread, a flat handler list s[1..s.n] and `s.bound`,
-- the list's length when the innermost open scope (pcall, xpcall, scope)
-- began: its handlers are those above it. Each scope saves the outer
-- bound in a local and puts it back when it ends, so no stack of bounds
-- is kept. The thread's root scope has bound 0.
local scopes_of = setmetatable({}, { __mode = 'k' })
K.main_thread_key = {}

-- The last fiber coroutine asked for and its record: one entry, so that
-- a fiber's pcalls skip the weak table. Cleared when that fiber ends
-- (fiber_done), so it never outlives the fiber nor serves the next one.
local cached_co, cached_s = false, false

-- Calls of scope_cleanup_push so far, in all threads: a pcall during which
-- the count did not change has no handler of its own to run, and its end
-- need not look at the list (an upvalue is cheaper than `s.n` there).
local scope_pushes = 0

local function thread_scopes()
  -- At C depth 0 a running fiber is in its own coroutine (user coroutines
  -- and gsub callbacks run counted): no coroutine.running call then.
  local f = current
  local co = c_depth == 0 and f and f[CO]
  if co and co == cached_co then return cached_s end
  local th = co or co_running() or K.main_thread_key
  local s = scopes_of[th]
  if not s then
    s = { n = 0, bound = 0 }
    scopes_of[th] = s
  end
  if co then cached_co, cached_s = co, s end
  return s
end

local report_forced_close
local closing = false    -- VM terminating: stop running fibers

-- A cleanup handler raised: the VM closes. Where the fiber can yield, it
-- ends now; elsewhere (inside a C callback) it raises, and the scheduler
-- stops as soon as the fiber next suspends or ends.
local function forced_close()
  report_forced_close(co_running())
  closing = true
  if K.can_suspend() then co_yield(TERMINATE) end
  error('VM closing: a cleanup handler raised', 0)
end

-- Runs handlers above `bound` in reverse, interruption disabled. A raising
-- handler closes the VM at once.
local function run_handlers(s, bound)
  if s.n <= bound then return end
  local f = current
  if f then f.int_disabled = f.int_disabled + 1 end
  while s.n > bound do
    local h = s[s.n]
    s[s.n] = nil
    s.n = s.n - 1
    local ok = raw_pcall(h)
    if not ok then forced_close() end
  end
  if f then f.int_disabled = f.int_disabled - 1 end
end

---------------------------------------------------------------------------
-- Fiber-aware pcall and xpcall (coroutine.* below)
-- The end of a failed pcall or xpcall (see scope_tail).
local function pcall_failed(s, n0, e)
  if e == NOT_ENOUGH_MEMORY then emergency_gc() end
  if s.n > n0 then run_handlers(s, n0) end
  return false, normalize_error(e)
end

-- The success path is kept to a few bytecodes: when a pcall'd function
-- calls C (an I/O fast path), LuaJIT cannot compile the return through
-- the pcall frame, so what follows it runs in the interpreter.
local function pcall_tail(s, outer, n0, pushes, depth, ok, ...)
  s.bound = outer
  c_depth = depth
  if ok and pushes == scope_pushes then return true, ... end
  if not ok then return pcall_failed(s, n0, (...)) end
  if s.n > n0 then run_handlers(s, n0) end
  return true, ...
end

function pcall(fn, ...)
  -- (an interrupted fiber is counted in guards: while zero, no field of
  -- the record needs a look)
  local f = current
  if guards > 0 and f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  local s = thread_scopes()
  local outer, n0 = s.bound, s.n
  s.bound = n0
  return pcall_tail(s, outer, n0, scope_pushes, c_depth, raw_pcall(fn, ...))
end

-- (xpcall, scope, scope_cleanup_push and scope_cleanup_pop are
-- lua/core/scopes.lua, loaded on first use: "Lazily loaded functions"
-- below)

---------------------------------------------------------------------------
-- Suspension points
--
-- A fiber can suspend only where LuaJIT can yield all the way up to the
-- scheduler. It cannot inside a callback called from C (table.sort
-- comparator, string.gsub function, load reader, __tostring via tostring,
-- __gc, ...): co_yield would fail there. Every suspending function checks
-- this BEFORE it registers anything (op, queue entry, exit code), so a
-- refused suspension changes no state.
--
-- `c_resumes` counts user coroutines resumed from such a place and still
-- running: inside them a yield reaches only the resume wrapper, which could
-- not forward it, so the fiber cannot suspend either. The count nests with
-- the C stack (a fiber switch is impossible while it is above zero).
local c_resumes = 0
local CANNOT_SUSPEND = 'attempt to yield across C-call boundary: a fiber cannot suspend'
  .. ' inside a callback called from C (table.sort comparator, string.gsub function,'
  .. ' load reader, __tostring, __gc, ...); suspend outside of it'

local function can_suspend()
  return c_resumes == 0 and co_isyieldable()
end
K.can_suspend = can_suspend

-- Raises unless the running fiber can suspend here. For functions that
-- suspend only sometimes (lock, join, get): call right before registering.
local function check_yieldable()
  if c_resumes > 0 or not co_isyieldable() then error(CANNOT_SUSPEND, 0) end
end
K.check_yieldable = check_yieldable

-- The checks of a function that always suspends (and is an interruption
-- point): yieldability, forbid_suspend, pending interruption.
local function check_suspend(f)
  check_yieldable()
  if not f then no_fiber() end
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  if f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
end
K.check_suspend = check_suspend

-- The running fiber, after check_suspend's checks but the yieldability
-- one (a Lua call of coroutine.isyieldable ends a JIT trace): for send
-- and receive, which ask it only where they would suspend
-- (lua/core/actors.lua).
function K.fiber_for_message()
  local f = current
  if guards > 0 or c_resumes > 0 or not f then check_suspend(f) end
  return f
end

-- The running fiber's own coroutine, where it is the running thread (C
-- depth 0: user coroutines and gsub callbacks run counted), else false or
-- nil (lua/io_object.lua: the thread of a direct read's yieldability check).
function K.fiber_own_thread()
  local f = current
  return c_depth == 0 and f and f[CO]
end

-- The checks of a function that suspends only sometimes, before it knows.
local function check_wait(f)
  -- (no `f`: a finalizer running in the scheduler's own thread)
  if not f then check_yieldable() no_fiber() end
  if f.susp_forbidden > 0 then raise_core('forbid_suspend_block') end
  if f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
end
K.check_wait = check_wait

-- Suspends the current fiber until someone calls wake(f, a). The
-- interrupter (if interruption is enabled) runs when the fiber is
-- interrupted while waiting. Returns the wake value.
-- `interrupter(f, data)` is a plain function plus its data, so that waiting
-- allocates no closure. The data waits in `w1`, which the wake overwrites.
local function suspend(f, interrupter, data)
  if interrupter and f.int_disabled == 0 then
    f[INTERRUPTER], f[W1] = interrupter, data
  end
  return co_yield(SUSPEND)
end
K.suspend = suspend

---------------------------------------------------------------------------
-- Ring operations: submit, wait for the completion, deliver the result.
-- The waiter of an op (a fiber record, or a function called with the
-- result) is kept under the op's slot index (the low 32 bits of its id):
-- `op_waiters[k]`, with the op's id in `op_wid[k]` (false: none). Ids are
-- never reused, so keying a hash table by them made every op a new key
-- and its table rehash every few dozen ops (~800 instructions per echoed
-- message, docs/performance.md "echo-ffi"); slot indices are few and
-- reused, an array. A slot is freed when its CQE is reaped, which may be
-- before Lua sees the completion (one stashed by an inline attempt), so a
-- new op may find its slot's entry still taken: it then waits in
-- `op_wextra[id]`. Delivery checks the id, so no waiter ever gets another
-- op's result.
local op_waiters, op_wid, op_wextra = {}, {}, {}
local SLOT_SPAN = 4294967296 -- 2^32: id % SLOT_SPAN is the slot index
local inflight = 0
local cancel_op = rt.cancel

local function add_waiter(id, w)
  local k = id % SLOT_SPAN
  if op_wid[k] then op_wextra[id] = w else op_waiters[k], op_wid[k] = w, id end
  inflight = inflight + 1
end

-- Registers `id` (just submitted) so that its completion calls
-- `on_done(result)`.
local function watch_op(id, on_done)
  add_waiter(id, on_done)
end
K.watch_op = watch_op

-- Waits for ring op `id` from the current fiber and returns the CQE result.
-- Interruption cancels the op; a cancelled op that nonetheless completed
-- delivers its real result (never interrupted in the middle).
-- `cancels` counts the fibers whose `cancel_requested` is set, so that the
-- common wake-up skips reading that field (a miss that goes through the
-- record's metatable: ~150 instructions in the interpreter, twice per
-- echoed message; docs/performance.md "echo-ffi").
local cancels = 0
local function cancel_interrupter(f, id)
  if not f.cancel_requested then cancels = cancels + 1 end
  f.cancel_requested = true
  cancel_op(id)
end

function K.await_op(f, id)
  -- A fiber record as waiter means "wake it with the result".
  -- (add_waiter, inlined; `k` scoped so that the yield's frame starts no
  -- higher: a waiting fiber's coroutine keeps its initial stack)
  do
    local k = id % SLOT_SPAN
    if op_wid[k] then op_wextra[id] = f else op_waiters[k], op_wid[k] = f, id end
  end
  inflight = inflight + 1
  -- suspend(f, cancel_interrupter, id), inlined: one frame less keeps a
  -- waiting fiber's coroutine within its initial stack
  do
    -- f.int_disabled, read without the record's metatable where the
    -- field is absent (the common case): ~25 instructions less per op in
    -- the trace (docs/performance.md "echolua")
    local d = rawget(f, 'int_disabled')
    if d == nil or d == 0 then f[INTERRUPTER], f[W1] = cancel_interrupter, id end
  end
  local res = co_yield(SUSPEND)
  if cancels > 0 and f.cancel_requested then
    f.cancel_requested = nil
    cancels = cancels - 1
    if res == -E.ECANCELED then raise_core('interrupted') end
  end
  return res
end

-- K.await_op for an op of an I/O object's state `st` whose single-op
-- slot is free (st.solo false; lua/io_object.lua): tracks the op there
-- while it waits, and returns `res, interrupted` instead of raising, so
-- that the caller (the socket fast path) needs no protected call to
-- untrack it: a return through a pcall frame ends LuaJIT's trace, and the
-- fiber's code after every resume then ran in the interpreter
-- (docs/performance.md "echo-ffi"). The waiter is registered before the
-- op is tracked (a failed allocation there leaves nothing tracked), and
-- tracking allocates nothing (the fields exist).
function K.await_op_solo(f, id, st)
  do
    local k = id % SLOT_SPAN
    if op_wid[k] then op_wextra[id] = f else op_waiters[k], op_wid[k] = f, id end
  end
  inflight = inflight + 1
  st.solo, st.npending = id, st.npending + 1
  do
    -- f.int_disabled, read without the record's metatable where the
    -- field is absent (the common case): ~25 instructions less per op in
    -- the trace (docs/performance.md "echolua")
    local d = rawget(f, 'int_disabled')
    if d == nil or d == 0 then f[INTERRUPTER], f[W1] = cancel_interrupter, id end
  end
  local res = co_yield(SUSPEND)
  st.solo, st.npending = false, st.npending - 1
  if cancels > 0 and f.cancel_requested then
    f.cancel_requested = nil
    cancels = cancels - 1
    if res == -E.ECANCELED then return res, true end
  end
  return res, false
end

-- Waits from fiber `f` for the next CQE of multishot op `id` (a socket's
-- receive stream, lua/io_object.lua) and returns `res, interrupted`. An
-- interruption leaves the op armed: `leave(f, data)` runs instead of a
-- cancellation, and must call K.shots.unwatch(f, id) (the fiber stops
-- waiting; the bytes the op brings stay for the next read) and wake `f`
-- with K.INTERRUPTED.
local function unwatch_shot(f, id)
  local k = id % SLOT_SPAN
  if op_wid[k] == id and op_waiters[k] == f then
    op_waiters[k], op_wid[k] = false, false
    inflight = inflight - 1
  elseif op_wextra[id] == f then
    op_wextra[id] = nil
    inflight = inflight - 1
  end
end
-- Stays ready behind the fibers ready now, without a ring op and
-- without an interruption point (the caller holds a result it must
-- return): for a read that took queued bytes where
-- K.may_complete_inline said no. The caller checked yieldability.
local function yield_ready() co_yield(YIELDED) end
local function await_shot(f, id, leave, data)
  do
    local k = id % SLOT_SPAN
    if op_wid[k] then op_wextra[id] = f else op_waiters[k], op_wid[k] = f, id end
  end
  inflight = inflight + 1
  if f.int_disabled == 0 then f[INTERRUPTER], f[W1] = leave, data end
  local res = co_yield(SUSPEND)
  if res == INTERRUPTED then return 0, true end
  return res, false
end
-- The receive streams' waits, in one entry (every key of K costs each
-- VM: four more crossed a resize of its hash part, +3 kB per idle actor).
K.shots = { await = await_shot, unwatch = unwatch_shot, yield_ready = yield_ready }

---------------------------------------------------------------------------
-- Fiber records and handles
local pool, pool_n = {}, 0

local report_panic

-- One error handler for every fiber: it runs on the failing fiber, so
-- `current` is the record to annotate. Tracebacks are captured at raise
-- time, protected: with no memory left for one (the error may be that),
-- the error itself still comes through (an error in the handler would
-- replace it by 'error in error handling'); the report then shows no
-- traceback. (Level 4: take_traceback, pcall, on_error, the raise.)
local function take_traceback()
  current.traceback = (raw_gsub(debug_traceback('', 4), '^\n', ''))
end
local function on_error(e)
  e = normalize_error(e)
  raw_pcall(take_traceback)
  return e
end

-- A fiber's `results`: false while it runs, then the packed results
-- {n=, true, ...}; or ONE_RESULT, the value being in `w1` (free once the
-- fiber finished: one value is the common case, and needs no table); or
-- FAILED, the error value being in `err`; after a join, JOINED_OK or
-- JOINED_CAUGHT.
local NO_RESULTS = { n = 1, true }
local FAILED, ONE_RESULT = {}, {}
local JOINED_OK, JOINED_CAUGHT = {}, {}

local fiber_done

-- Takes the body's xpcall results (the running fiber is `current`). A
-- fiber's body runs at C depth 0 and an error may have skipped the
-- wrappers' decrements, so the depth is reset before the root scope
-- handlers run.
local function body_ended(ok, ...)
  c_depth = 0
  if not ok and (...) == NOT_ENOUGH_MEMORY then emergency_gc() end
  if ok then
    local n = select('#', ...)
    if n == 0 then return fiber_done(current, NO_RESULTS) end
    if n == 1 then return fiber_done(current, ONE_RESULT, ...) end
    return fiber_done(current, pack(true, ...))
  end
  return fiber_done(current, FAILED, normalize_error((...)))
end

-- Records the fiber's end: `results`, `err`, root scope handlers.
fiber_done = function(f, results, value)
  if results == FAILED then
    f.err = value
  elseif results == ONE_RESULT and f.module then
    results = pack(true, value) -- lua/core/modules.lua reads results[2]
  end
  -- Root scope handlers: always for ordinary and module fibers, only on
  -- success for the VM main fiber. Scopes are created lazily.
  local co = f[CO]
  local s = scopes_of[co]
  if s then
    if results ~= FAILED or not f.vm_main then run_handlers(s, 0) end
    scopes_of[co] = nil
  end
  if cached_co == co then cached_co, cached_s = false, false end
  -- Only now is the fiber finished for everyone else (join, interrupt).
  f[RESULTS] = results
  -- w1 may still hold the job or a stale wake value: drop it
  if results == ONE_RESULT then f[W1] = value else f[W1] = nil end
end

-- The first resume of a fiber passes its job (the function, or {n=, fn,
-- args...}); `current` is its record. The body runs one frame below this
-- one, so a waiting fiber's stack stays small. A pooled coroutine waits in
-- co_yield(FINISHED) holding nothing of the fiber it ran (`job` is
-- cleared; fiber_done's locals are gone).
local function trampoline(job)
  while true do
    -- (few registers below the body's frame: the stack of a waiting fiber
    -- then rarely outgrows the coroutine's initial one)
    if type(job) == 'table' then
      body_ended(raw_xpcall(job[1], on_error, unpack(job, 2, job.n)))
    else
      body_ended(raw_xpcall(job, on_error))
    end
    job = nil
    job = co_yield(FINISHED)
  end
end

local function take_coroutine()
  if pool_n > 0 then
    local co = pool[pool_n]
    pool[pool_n] = nil
    pool_n = pool_n - 1
    return co
  end
  return co_create(trampoline)
end

-- The pool keeps at most POOL_MAX idle coroutines; the others are left to
-- the GC, so memory follows the live fibers, not the peak of the past.
local POOL_MAX = 128
local function release_coroutine(co)
  if pool_n < POOL_MAX then
    setfenv_u(co, NO_GLOBALS) -- nothing of its last fiber's module either
    pool_n = pool_n + 1
    pool[pool_n] = co
  end
end

-- A fiber record: memory per fiber is what makes 100k live fibers cheap.
-- The four fields every fiber uses are the array part, [W1], [CO],
-- [RESULTS], [INTERRUPTER] (false when unset), created with the record:
-- LuaJIT allocates a small array part together with the table header, so
-- the record is ONE 104-byte allocation that never grows for a fiber that
-- runs, waits and finishes (as 4 named fields, a 64-byte header plus a
-- 96-byte hash part: two allocations, 80 bytes more with malloc's
-- rounding). `w1` carries the job to the first run, then the wake value
-- (or the interrupter's data while suspended), then a single result.
-- Rare fields (detached, err, module data, ...) are named, added on use
-- (a hash part then), and read as these defaults until set. `env`, the
-- globals the fiber's thread gets (those of the thread that spawned it),
-- is a field only where it differs from the root module's.
local record_defaults = {
  interrupted = false, int_disabled = 0,
  env = NO_GLOBALS, -- the root module's globals once the VM main fiber exists
  susp_forbidden = 0,
  joiner = false, -- module fibers only (lua/core/modules.lua)
  ok = false, -- set for module fibers only (lua/core/modules.lua reads it)
  [CO] = false, [RESULTS] = false, [INTERRUPTER] = false,
}
local record_mt = { __index = record_defaults }

-- `job`: the function, or {n=, fn, args...}. The caller makes a handle for
-- the fiber, or marks it `detached` or `module` (see finish).
local function new_fiber_job(job, opts)
  -- [W1], [CO], [RESULTS], [INTERRUPTER]
  local f = setmetatable({ job, false, false, false }, record_mt)
  local vm_main = false
  if opts then
    for k, v in pairs(opts) do f[k] = v end
    vm_main = f.vm_main
  end
  if vm_main then
    -- the first fiber of the VM (lua/core/modules.lua, K.start_main): its
    -- globals become the default, so the root module's fibers need no field
    record_defaults.env = f.env
    f.env = nil
  elseif not (opts and rawget(f, 'env')) then
    -- the spawning thread's globals (never the runtime's)
    local env = raw_getfenv(0)
    if env == REAL_G then env = NO_GLOBALS end
    if env ~= record_defaults.env then f.env = env end
  end
  -- The coroutine is taken at the first run (see step): fibers that finish
  -- without suspending reuse one pooled coroutine, however many are queued.
  if vm_main then
    local co = take_coroutine()
    f[CO] = co
    setfenv_u(co, f.env)
  end
  rq_n = rq_n + 1 -- schedule(f, job), with w1 already set
  runq[rq_n] = f
  if LOG then log_spawned(f, hexid(f)) end
  return f
end

-- `args` is nil or a packed argument list.
function K.new_fiber(fn, args, opts)
  if args then return new_fiber_job(pack(fn, unpack(args, 1, args.n)), opts) end
  return new_fiber_job(fn, opts)
end

-- Fibers waiting in join, by the fiber they join (kept out of the records
-- so that joining adds no field). Module fibers use the `joiner` field.
local joiners = {}

-- Fiber handles (`spawn`, their metatable and finalizer, the methods join,
-- detach, interrupt, joinable, ...) and most this_fiber functions are
-- lua/core/fibers.lua, loaded the first time a VM needs one (`spawn`, a
-- this_fiber field; an idle actor never does) through
-- `K.load_lazy_chunk`, a plain C function, so also in a finalizer while
-- the VM closes, with the scheduler state it shares, as arguments (not a
-- table of named fields: each field name would be one more string every
-- VM keeps, docs/performance.md "rss-str"). A load that fails (out of
-- memory) is tried again next time.
local fiber_api
local function load_fiber_api()
  local api = fiber_api
  if not api then
    api = K.load_lazy_chunk(REAL_G, 'fibers')(K, FAILED, ONE_RESULT, JOINED_OK, JOINED_CAUGHT,
      joiners,
      function(n) guards = guards + n end, -- add_guards(n)
      function(f) return report_panic(f) end,
      no_fiber, LOG, log, new_fiber_job, pack,
      function() return run_over end, VM_CLOSING)
    fiber_api = api
  end
  return api
end

-- A tail call: the real spawn's error levels count from the user's call.
function spawn(...)
  return (fiber_api or load_fiber_api()).spawn(...)
end

---------------------------------------------------------------------------
-- Reports (stderr; stdout is flushed first by rt.stderr_write)
local stderr_write = rt.stderr_write

-- A panic report's text and traceback are built by lua/core/reports.lua,
-- loaded by the VM's first report (most actors never print one) through
-- `K.load_lazy_chunk`, a plain C function: a report may be written while
-- the VM closes. Reports must work at the memory limit: a load that fails
-- is tried again after a collection (the failed fiber's garbage is freed
-- by then); if even that fails, the report still names the error, without
-- a traceback, and the next report tries again.
local write_panic_loaded
local function load_reports()
  return K.load_lazy_chunk(REAL_G, 'reports')(K, raw_pcall, raw_gsub, stderr_write, emergency_gc)
end
local function write_panic(head, f)
  local write = write_panic_loaded
  if not write then
    local ok, loaded = raw_pcall(load_reports)
    if not ok then
      emergency_gc()
      ok, loaded = raw_pcall(load_reports)
    end
    if not ok then
      raw_pcall(stderr_write, head)
      local e = f.err
      if type(e) == 'string' then raw_pcall(stderr_write, e) end
      raw_pcall(stderr_write, "'\n")
      return
    end
    write = loaded
    write_panic_loaded = write
  end
  write(head, f)
end

report_panic = function(f)
  write_panic('Fiber ' .. hexid(f) .. " panicked: '", f)
end

local function report_main_panic(f)
  write_panic('Main fiber from VM ' .. K.vm_id .. " panicked: '", f)
end

report_forced_close = function(th)
  if vm_report_printed then return end
  vm_report_printed = true
  stderr_write('VM ' .. K.vm_id
    .. ' forcibly closed due to error raised on cleanup handler from coroutine '
    -- a fiber's own thread is named by the fiber's id
    .. ((current and th == current[CO]) and hexid(current) or hexid(th)) .. '\n')
end

-- An error raised by a __gc finalizer is reported and the VM goes on: the
-- object is already unreachable, and the code that happened to trigger the
-- collection is not to blame. LuaJIT calls this on its finalizer thread.
local function report_finalizer_error(e)
  stderr_write('Error in __gc finalizer from VM ' .. K.vm_id .. ": '"
    .. K.error_message(normalize_error(e)) .. "'\n")
end
-- LuaJIT mutes VM events while this handler runs, so a finalizer error
-- raised by a collection that the report itself triggered would be lost:
-- the collector is held off meanwhile (unless the user had stopped it).
local gc_control = collectgarbage
K.jit_attach(function(e)
  local gc_was_running = gc_control('isrunning')
  if gc_was_running then gc_control('stop') end
  K.raw_pcall(report_finalizer_error, e)
  if gc_was_running then gc_control('restart') end
end, 'errfin')

-- Out of memory outside any fiber's protection (in the runtime's own code):
-- the VM cannot go on. The report is built before it is needed, as building
-- it then could fail too; the exit status is 1, as after a main fiber panic.
local errmem_report
function K.report_errmem()
  if vm_report_printed then return end
  vm_report_printed = true
  K.main_panicked = true
  stderr_write(errmem_report or "VM forcibly closed due to 'LUA_ERRMEM'\n")
end

---------------------------------------------------------------------------
-- The loop
local function finish(f)
  local failed = f[RESULTS] == FAILED
  if LOG then log_finished(hexid(f), failed, f.err) end
  f[INTERRUPTER] = false
  release_coroutine(f[CO])
  f[CO] = false
  if f.interrupted then guards = guards - 1 end
  guards = guards - f.susp_forbidden
  if f.module then f.ok = not failed end
  if f.vm_main then
    if failed then
      K.main_panicked = true
      -- for a monitor of this VM (src/actor/host.rs)
      local ok, text = raw_pcall(K.error_message, f.err)
      K.main_error = ok and type(text) == 'string' and text or '?'
      report_main_panic(f)
      vm_report_printed = true
      closing = true
    end
    K.main_finished(f)
    return
  end
  local j = joiners[f] or f.joiner
  if j then
    wake(j)
  elseif f.detached then
    if failed and not is_interrupted(f.err) and not f.module then report_panic(f) end
  end
end

local turn = rt.turn
-- completions after the first of a turn (see rt.turn)
local cbuf = rt.completions
-- In a VM that opened LuaJIT's ffi for its sockets or files, the first
-- of those are read from the completion array instead (a `double *` to
-- Rust's array, src/actor/vm.rs `write_completion_array`): the id of
-- completion (i + 1) / 2 at carr[i - 1], its result at carr[i], for
-- i < carr_n; an id of -1 says "this one is in cbuf". Reading it
-- compiles into the reap loop's trace, where each cbuf entry cost Rust
-- a lua_pushnumber and a lua_rawseti. carr_n stays 0 in other VMs
-- (sandboxes never open ffi).
local carr, carr_n = nil, 0
function K.use_completion_array(p, n) carr, carr_n = p, n end
-- Tables that held more than this many entries are replaced once empty, so
-- a burst of fibers or ops leaves no capacity behind.
local SHRINK_ABOVE = 1024
local op_peak = 0

-- sleep(0) waiters: fibers that yielded NOP_WAIT queue in `nop_q` (FIFO).
-- The next turn submits one IORING_OP_NOP for the whole group, which then
-- becomes `nop_wait` (the two queues swap: no allocation per turn); the
-- NOP's completion wakes that group in order. So sleep(0) itself calls no
-- Rust function, and any number of them in one batch cost one NOP in the
-- same io_uring_enter as the turn. One group at a time is in flight (a
-- NOP completes at submission, so the next group rarely waits a turn).
local nop_q, nop_wait, nop_in_flight = q_new(), q_new(), false
-- An interrupted waiter leaves its group at once (the group's NOP still
-- completes, and may then wake nobody).
local function leave_nop(f, q)
  q_remove(q, f)
  wake(f, INTERRUPTED)
end
local function nop_done(res)
  nop_in_flight = false
  local f = q_pop(nop_wait)
  while f do
    wake(f, res)
    f = q_pop(nop_wait)
  end
end

-- Inline completion (lua/io_object.lua IO.run_op_inline): an op that
-- completes during its own submission may hand its result straight back
-- to the running fiber, sparing it a suspend, a ring turn and a resume.
-- Only while nobody else could run in between (no fiber ready, no sleep(0)
-- group waiting; the executor checks that no other completion and no
-- message came) and at most INLINE_BUDGET times between two ring turns,
-- so a fiber looping on such ops still lets the VM turn (timers, the host
-- and other actors on this thread get their look).
local INLINE_BUDGET = 32
local inline_left = INLINE_BUDGET
function K.may_complete_inline()
  if rq_n > 0 or batch_rest > 0 or inline_left <= 0 or nop_q.head then return false end
  inline_left = inline_left - 1
  return true
end
-- A read served from bytes already received (a socket's receive stream,
-- lua/io_object.lua) is no op: it goes on without suspending whoever else
-- is ready (as a buffered reader would), only within the same budget, so
-- a fiber looping on such reads still lets the VM turn.
local function may_take_queued()
  if inline_left <= 0 then return false end
  inline_left = inline_left - 1
  return true
end
K.shots.may_take_queued = may_take_queued

-- Fibers blocked on other actors (send, receive): lua/core/actors.lua
-- counts them. While it is non-zero an idle VM is not done: a message or
-- receipt may still wake it.
K.actor_waits = 0

-- Sandboxes whose frames this VM's ring reads (src/actor/sandboxed/
-- ring_relay.rs; their ops are Rust's, not counted in `inflight`): as
-- rt.turn last said, plus those spawned since. They do not keep the VM
-- alive, but a fiber waiting for a message needs the ring turned for them.
local relays = 0
function K.relay_started() relays = relays + 1 end

-- Results of K.step, for the thread host (src/actor/host.rs).
local STEP_DONE, STEP_READY, STEP_IDLE = 0, 1, 2

-- The VM is over: report what fibers stayed blocked on.
function K.finish_run()
  if run_over then return end
  -- (no report_deadlocks: the sync chunk never loaded, so no mutex or
  -- future exists)
  if not closing and not vm_report_printed and K.report_deadlocks then K.report_deadlocks() end
  run_over = true
end
local finish_run = K.finish_run

-- [1]: a message handed over to this step is held (lua/core/actors.lua)
local handed_held = { false }
K.handed_held = handed_held

-- Runs fiber `f` until it suspends, yields or ends (the fiber switch).
local function switch_to(f)
  current = f
  local co = f[CO]
  if not co then
    co = take_coroutine()
    f[CO] = co
    setfenv_u(co, f.env)
  end
  local ok, sig = co_resume(co, f[W1])
  current = nil
  if sig ~= SUSPEND then
    if sig == YIELDED then
      -- this_fiber.yield: queued again (its stale w1 is ignored)
      rq_n = rq_n + 1
      runq[rq_n] = f
    elseif sig == NOP_WAIT then
      -- sleep(0): joins the group the next turn's NOP wakes
      q_push(nop_q, f)
      if f.int_disabled == 0 then f[INTERRUPTER], f[W1] = leave_nop, nop_q end
    elseif sig == FINISHED then
      finish(f)
    else
      -- TERMINATE, or a failure of the runtime's own code: the VM
      -- ends and the process exits 70 (src/lib.rs).
      if not ok then
        if sig == NOT_ENOUGH_MEMORY then
          -- out of memory in the runtime's own code: exit 1 with the
          -- LUA_ERRMEM report, not an internal error
          K.report_errmem()
        else
          K.internal_error = type(sig) == 'string' and sig or type(sig)
        end
      end
      closing = true
    end
  end
end

-- After a batch: ends the step (a STEP_* result) when nothing can run or
-- be reaped, else turns the ring once and delivers its completions
-- (nil, and whether rt.turn said the host has work).
local function reap(block)
  if closing then finish_run() return STEP_DONE end
  local n, id, res, nop_id, host_wanted, hv = 0, nil, nil, nil, nil, nil
  local nops = nop_q.head and not nop_in_flight
  if inflight > op_peak then op_peak = inflight end
  if rq_n == 0 then
    if inflight == 0 and not nops then
      if K.actor_waits == 0 then
        finish_run()
        return STEP_DONE
      end
      -- A sandbox's frames come through this ring: turn for them.
      if relays == 0 then
        if handed_held[1] then K.give_back_handed() end
        return STEP_IDLE
      end
    end
    n, id, res, nop_id, host_wanted, relays, hv =
      turn(block, nops, relays > 0 and K.inbox_receiving())
  elseif inflight > 0 or nops or relays > 0 then
    n, id, res, nop_id, host_wanted, relays, hv =
      turn(false, nops, relays > 0 and K.inbox_receiving())
  else
    host_wanted = true
  end
  inline_left, batch_rest = INLINE_BUDGET, 0
  -- A sandbox's frame for the fiber waiting in receive, handed over
  -- instead of posted (src/actor/sandboxed/ring_relay.rs HandOver).
  if hv ~= nil then K.relay_handed(hv) end
  if nop_id then
    -- The waiting group is the NOP's: later sleep(0)s form a new one.
    nop_wait, nop_q, nop_in_flight = nop_q, nop_wait, true
    add_waiter(nop_id, nop_done)
  end
  -- the first completion comes as return values, the rest in cbuf
  for i = 1, 2 * n, 2 do
    if i > 1 then
      if i < carr_n then
        id = carr[i - 1]
        if id >= 0 then res = carr[i] else id, res = cbuf[i], cbuf[i + 1] end
      else
        id, res = cbuf[i], cbuf[i + 1]
      end
    end
    local k, w = id % SLOT_SPAN, nil
    if op_wid[k] == id then
      w = op_waiters[k]
      op_waiters[k], op_wid[k] = false, false
    else
      w = op_wextra[id]
      if w then op_wextra[id] = nil end
    end
    if w then
      inflight = inflight - 1
      if type(w) == 'function' then w(res) else wake(w, res) end
    end
  end
  if inflight == 0 and op_peak > SHRINK_ABOVE then
    op_waiters, op_wid, op_wextra, op_peak = {}, {}, {}, 0
  end
  return nil, host_wanted
end

-- One step of the VM: runs the queued fibers (and the ones they wake while
-- no ring op is in flight), then reaps the ring, sleeping in it only when
-- `block` and nothing is queued. Returns STEP_DONE once nothing can wake a
-- fiber any more (or the VM was terminated), STEP_READY when fibers are
-- queued, STEP_IDLE when waiting for ops or other actors.
-- `flags` (one number, cheaper to pass than three booleans): 1 `block`,
-- 2 `poll`: the host saw this VM's mailbox touched (lua/core/actors.lua
-- delivers first), 4 `alone`: the only VM of a single-threaded process:
-- the step goes on turning while fibers are ready and rt.turn says the
-- host has nothing to do (saves a call from Rust per turn). `rid`, `rok`:
-- the receipt the host took from the mailbox, `handed`: the message it
-- took (K.actor_poll).
local step_alone = false
-- A VM spawned during an alone step (spawn_vm calls this): from now on the
-- step returns to the host between batches.
function K.leave_alone() step_alone = false end
function K.step(flags, rid, rok, handed)
  local block, poll, alone = flags % 2 == 1, flags % 4 >= 2, flags >= 4
  if run_over then
    -- (never received: Rust reads this flag after a step that ended)
    if handed ~= nil then handed_held[1] = true end
    return STEP_DONE
  end
  step_alone = alone
  if poll then K.actor_poll(rid, rok, handed) end
  if not errmem_report then
    errmem_report = 'VM ' .. K.vm_id .. " forcibly closed due to 'LUA_ERRMEM'\n"
    K.errmem_report = errmem_report -- for Rust, if even calling report_errmem fails
  end
  if closing then finish_run() return STEP_DONE end
  -- The usual step of a VM that shares its thread: at most one fiber
  -- ready. The same as the loop below, which runs one batch when not
  -- alone, but without loops: LuaJIT compiles no trace through a loop
  -- that runs once per call (it aborted "inner loop in root trace" and
  -- blacklisted the step, which then ran interpreted).
  if not alone and rq_n <= 1 then
    if rq_n == 1 then
      local batch = runq
      runq, rq_n = spare, 0
      local f = batch[1]
      batch[1] = nil
      batch_rest = 0
      switch_to(f)
      spare = batch
    end
    local over = reap(block)
    if over then return over end
    -- A message handed over that no receive took goes back to the inbox
    -- (lua/core/actors.lua handed_v): none is held between steps.
    if handed_held[1] then K.give_back_handed() end
    if rq_n > 0 then return STEP_READY end
    return STEP_IDLE
  end
  local host_wanted
  repeat
    -- Run the fibers queued so far; keep going with the ones they woke only
    -- while alone and no ring op is in flight (nothing to reap, nothing to
    -- be fair to; a sandbox's frames count as ops here).
    while rq_n > 0 do
      local batch, n = runq, rq_n
      runq, rq_n = spare, 0
      for i = 1, n do
        local f = batch[i]
        batch[i] = nil
        batch_rest = n - i
        switch_to(f)
        if closing then break end
      end
      -- A drained batch keeps its capacity: only reuse it when small.
      spare = n <= SHRINK_ABOVE and batch or {}
      -- Not alone: the host must look between batches (other VMs of this
      -- thread, a shutdown, a kill), or a fiber that only yields would
      -- keep it out for ever.
      if closing or inflight > 0 or nop_q.head or not step_alone or relays > 0 then break end
    end
    local over
    over, host_wanted = reap(block)
    if over then return over end
    -- Only the first turn may sleep: the host must look before any later
    -- one could (what the fibers did since may need it).
    block = false
  until not step_alone or host_wanted or rq_n == 0
  -- A message handed over that no receive took goes back to the inbox
  -- (lua/core/actors.lua handed_v): none is held between steps.
  if handed_held[1] then K.give_back_handed() end
  if rq_n > 0 then return STEP_READY end
  return STEP_IDLE
end

---------------------------------------------------------------------------
-- this_fiber
local this_fiber = {}

-- The hottest path of the scheduler. It registers nothing before it
-- yields: the scheduler re-queues a fiber that yields YIELDED. So a yield
-- LuaJIT refuses (inside a C callback) leaves nothing to undo, and neither
-- a co_isyieldable C call nor a pcall around the yield is needed (each
-- cost ~10% of a yield). LuaJIT's refusal is a string located at the
-- co_yield call below; normalize_error shows CANNOT_SUSPEND instead.
function this_fiber.yield()
  -- (no `current`: a finalizer running in the scheduler's own thread)
  if guards > 0 or c_resumes > 0 or not current then check_suspend(current) end
  co_yield(YIELDED) -- keep this call on the line before `end` (see below)
end
-- The refusal LuaJIT raises at the co_yield call on the line before `f`'s
-- `end`. The core bytecode is stripped of line info (build.rs): LuaJIT
-- then names line 0, for every line of this chunk alike.
local function yield_refusal_at(f)
  local at = K.debug.getinfo(f, 'S')
  local line = at.lastlinedefined > 0 and at.lastlinedefined - 1 or 0
  return at.short_src .. ':' .. line .. ': attempt to yield across C-call boundary'
end
K.rename_error(yield_refusal_at(this_fiber.yield), CANNOT_SUSPEND)

-- time.sleep(0) (lua/core/time.lua): like this_fiber.yield it registers
-- nothing before it yields, so a refused yield leaves nothing to undo; the
-- scheduler puts the fiber in the NOP group (see nop_q).
local function nop_woken(res)
  if res == INTERRUPTED then raise_core('interrupted') end
end
function K.sleep0()
  if guards > 0 or c_resumes > 0 or not current then
    if not current then no_fiber() end
    check_suspend(current)
  end
  return nop_woken(co_yield(NOP_WAIT)) -- keep on the line before `end`
end
K.rename_error(yield_refusal_at(K.sleep0), CANNOT_SUSPEND)

-- Each module gets its own proxy table with this (locked) metatable.
local this_fiber_mt = {
  __index = function(_, k)
    local m = this_fiber[k]
    if m then return m end
    local api = fiber_api or load_fiber_api()
    m = api.this_fiber[k]
    if m then return m end
    local p = api.this_fiber_props[k]
    if p then
      if not current then no_fiber() end
      return p()
    end
    raise_core('bad_index', 'index', 2)
  end,
  __newindex = function() raise_errno(E.EPERM) end,
  __metatable = 'this_fiber',
}
K.this_fiber_mt = this_fiber_mt

---------------------------------------------------------------------------
-- Lazily loaded functions: coroutine.* and string.gsub
-- (lua/core/coroutines.lua), scope, scope_cleanup_push, scope_cleanup_pop
-- and xpcall (lua/core/scopes.lua) are stubs until a VM first calls one
-- of them (most actors never do): the chunk then loads
-- (`K.load_lazy_chunk`, a plain C function, so also in a finalizer while
-- the VM closes) with the scheduler state it shares, as arguments (built
-- only then: a table of named fields kept its names and hash part in
-- every VM), and the stub tail-calls the real function (error levels
-- count from the user's call as before). A load that fails (out of
-- memory) is tried again by the next call. The runtime's own code calls
-- the raw gsub; `pcall` stays above (the runtime's hot paths run through
-- it).
local lazy_loaded = {} -- chunk name -> its functions, once loaded
local function load_lazy_functions(chunk)
  local run = K.load_lazy_chunk(REAL_G, chunk)
  local function set_c_depth(d) c_depth = d end
  if chunk == 'scopes' then
    return run(K, raw_pcall, raw_xpcall, thread_scopes, run_handlers, forced_close,
      emergency_gc, NOT_ENOUGH_MEMORY, K.fiber_or_nil, pcall_tail,
      -- state(): what a scope or an xpcall starts from
      function() return c_depth, scope_pushes, guards end,
      set_c_depth,
      -- one more cleanup handler pushed, in any thread (see scope_pushes)
      function() scope_pushes = scope_pushes + 1 end)
  end
  return run(K, co_create, co_resume, co_yield, co_status, co_running, co_isyieldable,
    raw_pcall, raw_gsub, SUSPEND, YIELDED, NOP_WAIT, TERMINATE, NOT_ENOUGH_MEMORY,
    emergency_gc, thread_scopes, run_handlers, K.fiber_or_nil,
    set_c_depth,
    -- enter_c(): one more call that recurses through C: the depth before
    -- it, or nil past C_DEPTH_LIMIT.
    function()
      local d = c_depth
      if d >= C_DEPTH_LIMIT then return nil end
      c_depth = d + 1
      return d
    end,
    -- enter_resume(): enter_c for a resume, which is also counted in
    -- c_resumes (true as the second result) where the fiber cannot suspend.
    function()
      local d = c_depth
      if d >= C_DEPTH_LIMIT then return nil end
      c_depth = d + 1
      if c_resumes > 0 or not co_isyieldable() then
        c_resumes = c_resumes + 1
        return d, true
      end
      return d, false
    end,
    -- leave_counted_resume(d)
    function(d)
      c_depth = d
      c_resumes = c_resumes - 1
    end)
end
local function lazy_function(chunk, name)
  return function(...)
    local fns = lazy_loaded[chunk]
    if not fns then
      fns = load_lazy_functions(chunk)
      lazy_loaded[chunk] = fns
    end
    return fns[name](...)
  end
end
for _, name in ipairs({ 'scope', 'scope_cleanup_push', 'scope_cleanup_pop', 'xpcall' }) do
  REAL_G[name] = lazy_function('scopes', name)
end
local coroutine_patched = {}
for k, v in pairs(coroutine) do coroutine_patched[k] = v end
for _, name in ipairs({ 'create', 'resume', 'yield', 'status', 'running', 'wrap', 'isyieldable' }) do
  coroutine_patched[name] = lazy_function('coroutines', name)
end
_G.coroutine = coroutine_patched
string.gsub = lazy_function('coroutines', 'gsub')

---------------------------------------------------------------------------
-- Termination from Lua code (system.exit, forced close).
function K.terminate_vm()
  co_yield(TERMINATE)
end
end -- define (its body is not indented, to keep the history readable)
define()
