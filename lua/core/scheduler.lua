-- Fibers on LuaJIT coroutines, driven by a FIFO run queue, waiting on the
-- actor's io_uring.
--
-- Invariants:
-- * One run queue per VM; every wake-up appends (FIFO). A fiber is in the
--   queue at most once: only `wake`/`schedule` enqueue, and a suspended
--   fiber is woken exactly once (its interrupter is cleared by the wake).
-- * A fiber suspends only by yielding SUSPEND from its own coroutine; user
--   coroutines in between forward the yield (coroutine.resume wrapper) and
--   are "busy" meanwhile.
-- * Fiber states: ready (queued) -> running -> suspended | finished.
--   A fiber takes a pooled coroutine when it first runs; a finished
--   fiber's coroutine goes back to the pool.
-- * An op in flight on the ring maps to exactly one waiting callback in
--   `op_waiters`; `inflight` counts them. The VM ends when the run queue is
--   empty and nothing is in flight (nothing can wake a fiber any more).
local K = ...
local rt = K.rt
local debug_traceback, getfenv_u, setfenv_u = K.debug.traceback, K.debug.getfenv, K.debug.setfenv
local co_create, co_resume, co_yield, co_status, co_running =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status, coroutine.running
-- false inside a C or Rust call (a table.sort comparator, __tojson, ...),
-- where a yield would fail after the fiber had registered its wait
local co_isyieldable = coroutine.isyieldable
local raw_pcall, raw_xpcall = pcall, xpcall
local select, type, error, setmetatable, tostring, unpack = select, type, error, setmetatable, tostring, unpack
local pack = function(...) return { n = select('#', ...), ... } end
local raise_core, raise_errno = K.raise_core, K.raise_errno
local normalize_error, is_interrupted = K.normalize_error, K.is_interrupted
local E = rt.errno
-- LURING_LOG=debug: fiber events (fixed at VM start, so free when off).
local LOG, log = rt.log_enabled, rt.log

-- Sentinels yielded to the scheduler; user code can never produce them.
local SUSPEND, FINISHED, TERMINATE = {}, {}, {}
local INTERRUPTED = {}   -- wake value meaning "your wait was interrupted"
K.SUSPEND, K.TERMINATE, K.INTERRUPTED = SUSPEND, TERMINATE, INTERRUPTED

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
local current            -- fiber record running now (nil in the scheduler)
local fiber_of = setmetatable({}, { __mode = 'k' })  -- fiber coroutines -> true
local closing = false    -- VM terminating: stop running fibers
local vm_report_printed = false

local function schedule(f, a, b)
  f.w1, f.w2 = a, b
  rq_n = rq_n + 1
  runq[rq_n] = f
end

-- Wake a suspended fiber with (a, b); commits the wake so a later
-- interrupt() cannot also wake it.
local function wake(f, a, b)
  f.interrupter = nil
  schedule(f, a, b)
end
K.wake = wake

function K.current() return current end

---------------------------------------------------------------------------
-- Scopes: per Lua thread, a flat handler list plus scope boundaries.
local scopes_of = setmetatable({}, { __mode = 'k' })
K.main_thread_key = {}

local function thread_scopes()
  local th = co_running() or K.main_thread_key
  local s = scopes_of[th]
  if not s then
    s = { n = 0, bounds = { 0 }, depth = 1 }
    scopes_of[th] = s
  end
  return s
end

local report_forced_close

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
    if not ok then
      report_forced_close(co_running())
      co_yield(TERMINATE)
    end
  end
  if f then f.int_disabled = f.int_disabled - 1 end
end

local function open_scope(s)
  local d = s.depth + 1
  s.depth = d
  s.bounds[d] = s.n
end

local function close_scope(s)
  local d = s.depth
  local bound = s.bounds[d]
  s.bounds[d] = nil
  s.depth = d - 1
  run_handlers(s, bound)
end

function scope_cleanup_push(h)
  if type(h) ~= 'function' then raise_errno(E.EINVAL, 1) end
  local s = thread_scopes()
  s.n = s.n + 1
  s[s.n] = h
end

function scope_cleanup_pop(execute)
  local s = thread_scopes()
  if s.n <= s.bounds[s.depth] then raise_core('unmatched_scope_cleanup') end
  local h = s[s.n]
  s[s.n] = nil
  s.n = s.n - 1
  if execute == nil or execute then
    local f = current
    if f then f.int_disabled = f.int_disabled + 1 end
    local ok = raw_pcall(h)
    if f then f.int_disabled = f.int_disabled - 1 end
    if not ok then
      report_forced_close(co_running())
      co_yield(TERMINATE)
    end
  end
end

local function scope_tail(s, ok, ...)
  close_scope(s)
  if not ok then error(normalize_error((...)), 0) end
end

function scope(f)
  if type(f) ~= 'function' then raise_errno(E.EINVAL, 1) end
  local s = thread_scopes()
  open_scope(s)
  return scope_tail(s, raw_pcall(f))
end

---------------------------------------------------------------------------
-- Suspension points
local function check_suspend(f)
  if f.susp_forbidden > 0 or not co_isyieldable() then raise_core('forbid_suspend_block') end
  if f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
end
K.check_suspend = check_suspend

-- Suspends the current fiber until someone calls wake(f, a, b). The
-- interrupter (if interruption is enabled) runs when the fiber is
-- interrupted while waiting. Returns the wake values.
-- `interrupter(f, data)` is a plain function plus its data, so that waiting
-- allocates no closure.
local function suspend(f, interrupter, data)
  if interrupter and f.int_disabled == 0 then
    f.interrupter, f.idata = interrupter, data
  end
  return co_yield(SUSPEND)
end
K.suspend = suspend

---------------------------------------------------------------------------
-- Ring operations: submit, wait for the completion, deliver the result.
local op_waiters = {}
local inflight = 0
local cancel_op = rt.cancel

-- Registers `id` (just submitted) so that its completion calls
-- `on_done(result)`.
local function watch_op(id, on_done)
  op_waiters[id] = on_done
  inflight = inflight + 1
end
K.watch_op = watch_op

-- Waits for ring op `id` from the current fiber and returns the CQE result.
-- Interruption cancels the op; a cancelled op that nonetheless completed
-- delivers its real result (never interrupted in the middle).
local function cancel_interrupter(f, id)
  f.cancel_requested = true
  cancel_op(id)
end

function K.await_op(f, id)
  -- A fiber record as waiter means "wake it with the result".
  op_waiters[id] = f
  inflight = inflight + 1
  local res = suspend(f, cancel_interrupter, id)
  if f.cancel_requested then
    f.cancel_requested = nil
    if res == -E.ECANCELED then raise_core('interrupted') end
  end
  return res
end

---------------------------------------------------------------------------
-- Fiber records and handles
local pool, pool_n = {}, 0
local fiber_handle_base = newproxy(true)
local fiber_hmt = getmetatable(fiber_handle_base)
fiber_hmt.__metatable = 'fiber'
-- A handle's userdata environment is its fiber record.
local record_of_handle = getfenv_u

local report_panic

-- One error handler for every fiber: it runs on the failing fiber, so
-- `current` is the record to annotate. Tracebacks are captured at raise time.
local function on_error(e)
  e = normalize_error(e)
  current.traceback = debug_traceback('', 2):gsub('^\n', '')
  return e
end

local NO_RESULTS = { n = 1, true }

local function body_done(f, ok, ...)
  if ok then
    f.ok = true
    if select('#', ...) == 0 then
      f.results = NO_RESULTS
    else
      f.results = pack(true, ...)
    end
  else
    f.ok = false
    f.err = normalize_error((...))
  end
end

local function trampoline(f)
  while true do
    local fn, args = f.fn, f.args
    f.fn, f.args = nil, nil
    if args then
      body_done(f, raw_xpcall(fn, on_error, unpack(args, 1, args.n)))
    else
      body_done(f, raw_xpcall(fn, on_error))
    end
    -- Root scope handlers: always for ordinary and module fibers, only on
    -- success for the VM main fiber. Scopes are created lazily.
    local co = f.co
    local s = scopes_of[co]
    if s then
      if f.ok or not f.vm_main then run_handlers(s, 0) end
      scopes_of[co] = nil
    end
    f = co_yield(FINISHED)
  end
end

local function take_coroutine()
  if pool_n > 0 then
    local co = pool[pool_n]
    pool[pool_n] = nil
    pool_n = pool_n - 1
    return co
  end
  local co = co_create(trampoline)
  fiber_of[co] = true
  return co
end

-- `args` is nil or a packed argument list.
local function new_fiber(fn, args, opts)
  -- The fields every fiber touches are created here (false for "unset"),
  -- so the table is sized once (32 hash slots) instead of rehashing as it
  -- grows; rare fields (detached, err, module data, ...) are added on use.
  local f = {
    fn = fn, args = args, co = false, finished = false,
    interrupted = false, int_disabled = 0, susp_forbidden = 0,
    w1 = false, w2 = false, interrupter = false, idata = false,
    handle_alive = false, joiner = false,
    joined = false, -- false, then 'ok' or 'caught' (ended by interruption)
    ok = false, results = false,
    env = false, -- globals of the fiber's thread, set when it first runs
  }
  if opts then for k, v in pairs(opts) do f[k] = v end end
  if not f.env then
    -- the spawning thread's globals (never the runtime's)
    local env = raw_getfenv(0)
    f.env = env == REAL_G and NO_GLOBALS or env
  end
  -- The coroutine is taken at the first run (see step): fibers that finish
  -- without suspending reuse one pooled coroutine, however many are queued.
  if f.vm_main then
    f.co = take_coroutine()
    setfenv_u(f.co, f.env)
  end
  schedule(f, f)
  if LOG then log('fiber spawned', hexid(f), f.module and 'module' or nil) end
  return f
end
K.new_fiber = new_fiber

local function make_handle(f)
  local h = newproxy(fiber_handle_base)
  setfenv_u(h, f)
  f.handle_alive = true
  return h
end

local fiber_methods = {}

local function join_interrupter(f, t)
  t.joiner = nil
  wake(f, INTERRUPTED)
end

function fiber_methods.join(h)
  local t = record_of_handle(h)
  local f = current
  if t.detached or t.joined or t.joiner then
    raise_errno(E.EINVAL, 1)
  end
  if t == f then raise_errno(E.EDEADLK) end
  check_suspend(f)
  if not t.finished then
    t.joiner = f
    local r = suspend(f, join_interrupter, t)
    if r == INTERRUPTED then raise_core('interrupted') end
  end
  t.joiner = nil
  if t.ok then
    t.joined = 'ok'
    return unpack(t.results, 2, t.results.n)
  elseif is_interrupted(t.err) then
    t.joined = 'caught'
    return
  else
    t.joined = 'ok'
    error(t.err, 0)
  end
end

function fiber_methods.detach(h)
  local t = record_of_handle(h)
  if t.detached or t.joined or t.joiner then raise_errno(E.EINVAL, 1) end
  t.detached = true
  if t.finished and not t.ok and not is_interrupted(t.err) then
    report_panic(t)
  end
end

function fiber_methods.interrupt(h)
  local t = record_of_handle(h)
  if t.finished then return end
  t.interrupted = true
  if LOG then log('fiber interrupted', hexid(t), t.interrupter and 'while suspended' or nil) end
  local i = t.interrupter
  if i then
    t.interrupter = nil
    i(t, t.idata)
  end
end

local fiber_props = {}
function fiber_props.interruption_caught(t)
  if not t.joined then raise_errno(E.EINVAL, 1) end
  return t.joined == 'caught'
end
function fiber_props.joinable(t)
  return not t.detached and not t.joined and not t.joiner
end

fiber_hmt.__index = function(h, k)
  local m = fiber_methods[k]
  if m then return m end
  local p = fiber_props[k]
  if p then return p(record_of_handle(h)) end
  raise_core('bad_index', 'index', 2)
end
fiber_hmt.__newindex = function() raise_errno(E.EPERM) end
fiber_hmt.__gc = function(h)
  local t = getfenv_u(h)
  if not t.detached and not t.joined then
    t.detached = true
    if t.finished and not t.ok and not is_interrupted(t.err) then
      report_panic(t)
    end
  end
end

function spawn(fn, ...)
  if type(fn) ~= 'function' then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  local f = new_fiber(fn, select('#', ...) > 0 and pack(...) or nil, nil)
  return make_handle(f)
end

---------------------------------------------------------------------------
-- Reports (stderr; stdout is flushed first by rt.stderr_write)
local stderr_write = rt.stderr_write

-- Panic tracebacks follow spec/core.md §8: the runtime's own frames are
-- hidden. Leading runtime/C frames (the raise machinery) are dropped, except
-- that a builtin which reports its errors through an async-op style wrapper
-- keeps one `[string "?"]: in function '<name>'` frame; runtime frames
-- between user frames are shown without line information; the frames below
-- the outermost user frame are the start wrapper's two fixed frames.
local wrapped_builtins = {
  join = true, send = true, receive = true, require = true, sleep = true,
  wait = true, get = true, scope = true, resume = true, read_some = true,
  write_some = true,
}
local RT_FRAME = '\t[string "?"]: in function <[string "?"]:0>'

local function frame_kind(l)
  -- runtime chunks are named '?<file>' (shown as [string "?<file>"]) or
  -- '=?<file>' (shown as ?<file>)
  if l:find('^\t%[string "%?') or l:find('^\t%?') then return 'rt' end
  if l:find('^\t%[C%]') or l:find('^\t%(tail call%)') then return 'c' end
  return 'user'
end

local function format_traceback(tb)
  if not tb then return 'stack traceback:\n' .. "\t[C]: in function ''\n" .. RT_FRAME end
  local lines = {}
  for l in tb:gmatch('[^\n]+') do lines[#lines + 1] = l end
  local first, last
  for i = 2, #lines do
    if frame_kind(lines[i]) == 'user' then
      first = first or i
      last = i
    end
  end
  local out = { 'stack traceback:' }
  if first then
    local prev = lines[first - 1]
    if first > 2 and frame_kind(prev) == 'rt' then
      local name = prev:match("in function '([^']+)'")
      if name and wrapped_builtins[name] then
        out[#out + 1] = '\t[string "?"]: in function \'' .. name .. "'"
      end
    end
    for i = first, last do
      local l = lines[i]
      local k = frame_kind(l)
      if k == 'rt' then
        local name = l:match("in function '([^']+)'")
        l = name and ('\t[string "?"]: in function \'' .. name .. "'") or RT_FRAME
      elseif k == 'c' then
        l = l:gsub("'raw_", "'")
      end
      out[#out + 1] = l
    end
  end
  out[#out + 1] = "\t[C]: in function ''"
  out[#out + 1] = RT_FRAME
  return table.concat(out, '\n')
end

report_panic = function(f)
  stderr_write('Fiber ' .. hexid(f) .. " panicked: '" .. K.error_message(f.err)
    .. "'\n" .. format_traceback(f.traceback) .. '\n')
end

local function report_main_panic(f)
  stderr_write('Main fiber from VM ' .. K.vm_id .. " panicked: '"
    .. K.error_message(f.err) .. "'\n" .. format_traceback(f.traceback) .. '\n')
end

report_forced_close = function(th)
  if vm_report_printed then return end
  vm_report_printed = true
  stderr_write('VM ' .. K.vm_id
    .. ' forcibly closed due to error raised on cleanup handler from coroutine '
    -- a fiber's own thread is named by the fiber's id
    .. ((current and th == current.co) and hexid(current) or hexid(th)) .. '\n')
end

---------------------------------------------------------------------------
-- The loop
local function finish(f)
  f.finished = true
  if LOG then log('fiber finished', hexid(f), f.ok and 'ok' or K.error_message(f.err)) end
  f.interrupter = nil
  pool_n = pool_n + 1
  pool[pool_n] = f.co
  if f.vm_main then
    if not f.ok then
      K.main_panicked = true
      report_main_panic(f)
      vm_report_printed = true
      closing = true
    end
    K.main_finished(f)
    return
  end
  local j = f.joiner
  if j then
    wake(j)
  elseif f.detached or not f.handle_alive then
    if not f.ok and not is_interrupted(f.err) and not f.module then report_panic(f) end
  end
  if f.on_finish then f.on_finish(f) end
end

local turn = rt.turn
local cbuf = {}

-- Runs the VM until nothing can wake a fiber, or it is terminated.
function K.run()
  while not closing do
    -- Run the fibers queued so far; keep going with the ones they woke only
    -- while no ring op is in flight (nothing to reap, nothing to be fair to).
    while rq_n > 0 do
      local batch, n = runq, rq_n
      runq, rq_n = spare, 0
      for i = 1, n do
        local f = batch[i]
        batch[i] = nil
        -- step f (inlined: the fiber switch is the scheduler's hot path)
        current = f
        local co = f.co
        if not co then
          co = take_coroutine()
          f.co = co
          setfenv_u(co, f.env)
        end
        local ok, sig = co_resume(co, f.w1, f.w2)
        current = nil
        if sig ~= SUSPEND then
          if sig == FINISHED then
            finish(f)
          else
            -- TERMINATE, or a failure of the runtime's own code.
            if not ok then
              stderr_write('luring: internal scheduler error: ' .. tostring(sig) .. '\n')
            end
            closing = true
          end
          if closing then break end
        end
      end
      spare = batch
      if closing or inflight > 0 then break end
    end
    if closing then break end
    local n = 0
    if rq_n == 0 then
      if inflight == 0 then break end
      n = turn(true, cbuf)
    elseif inflight > 0 then
      n = turn(false, cbuf)
    end
    for i = 1, 2 * n, 2 do
      local id, res = cbuf[i], cbuf[i + 1]
      local w = op_waiters[id]
      if w then
        op_waiters[id] = nil
        inflight = inflight - 1
        if type(w) == 'function' then w(res) else wake(w, res) end
      end
    end
  end
  if not closing and not vm_report_printed then K.report_deadlocks() end
end

---------------------------------------------------------------------------
-- this_fiber
local this_fiber = {}
local this_fiber_props = {}

function this_fiber.yield()
  local f = current
  if f.susp_forbidden > 0 or (f.interrupted and f.int_disabled == 0) or not co_isyieldable() then
    check_suspend(f)
  end
  -- schedule(f), inlined: this is the hottest path of the scheduler.
  f.w1, f.w2 = nil, nil
  rq_n = rq_n + 1
  runq[rq_n] = f
  co_yield(SUSPEND)
end

function this_fiber.forbid_suspend()
  current.susp_forbidden = current.susp_forbidden + 1
end
function this_fiber.allow_suspend()
  if current.susp_forbidden == 0 then raise_core('suspension_already_allowed') end
  current.susp_forbidden = current.susp_forbidden - 1
end
function this_fiber.disable_interruption()
  current.int_disabled = current.int_disabled + 1
end
function this_fiber.restore_interruption()
  if current.int_disabled == 0 then raise_core('interruption_already_allowed') end
  current.int_disabled = current.int_disabled - 1
end
function this_fiber_props.local_()
  local f = current.locals_owner or current
  local t = f.local_
  if not t then
    t = {}
    f.local_ = t
  end
  return t
end
function this_fiber_props.is_main() return current.is_main == true end
function this_fiber_props.id()
  if current.module then return K.vm_id end
  return hexid(current)
end

-- Each module gets its own proxy table with this (locked) metatable.
local this_fiber_mt = {
  __index = function(_, k)
    local m = this_fiber[k]
    if m then return m end
    local p = this_fiber_props[k]
    if p then return p() end
    raise_core('bad_index', 'index', 2)
  end,
  __newindex = function() raise_errno(E.EPERM) end,
  __metatable = 'this_fiber',
}
K.this_fiber_mt = this_fiber_mt

---------------------------------------------------------------------------
-- Fiber-aware pcall, xpcall and coroutine.*
local function pcall_tail(s, ok, ...)
  close_scope(s)
  if ok then return true, ... end
  return false, normalize_error((...))
end

function pcall(fn, ...)
  local f = current
  if f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  local s = thread_scopes()
  open_scope(s)
  return pcall_tail(s, raw_pcall(fn, ...))
end

function xpcall(fn, handler, ...)
  local f = current
  if f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  local s = thread_scopes()
  open_scope(s)
  local h = handler
  if type(handler) == 'function' then
    h = function(e) return handler(normalize_error(e)) end
  end
  return pcall_tail(s, raw_xpcall(fn, h, ...))
end

local busy = setmetatable({}, { __mode = 'k' })
local user_co = setmetatable({}, { __mode = 'k' })

local function resume_tail(co, ok, ...)
  if ok then
    local sig = ...
    if sig == SUSPEND or sig == TERMINATE then
      -- The coroutine suspended the whole fiber: forward the yield up and
      -- resume the coroutine transparently once the fiber is woken.
      busy[co] = true
      local a, b = co_yield(sig)
      busy[co] = nil
      return resume_tail(co, co_resume(co, a, b))
    end
    return true, ...
  end
  return false, normalize_error((...))
end

local coroutine_patched = {}
for k, v in pairs(coroutine) do coroutine_patched[k] = v end

-- A user coroutine's root scope runs when its body ends, on success or error.
local function scope_tail_co(s, ok, ...)
  run_handlers(s, 0)
  if not ok then error(normalize_error((...)), 0) end
  return ...
end

local function co_create_patched(fn)
  if type(fn) ~= 'function' then
    error("bad argument #1 to 'create' (function expected)", 2)
  end
  local co
  co = co_create(function(...)
    local s = thread_scopes()
    return scope_tail_co(s, raw_pcall(fn, ...))
  end)
  user_co[co] = true
  return co
end
coroutine_patched.create = co_create_patched

local function co_resume_patched(co, ...)
  local f = current
  if f and f.interrupted and f.int_disabled == 0 then raise_core('interrupted') end
  if busy[co] then raise_errno(E.EPERM) end
  if fiber_of[co] then raise_core('bad_coroutine') end
  return resume_tail(co, co_resume(co, ...))
end
coroutine_patched.resume = co_resume_patched

function coroutine_patched.yield(...)
  local th = co_running()
  if th == nil or fiber_of[th] then raise_core('bad_coroutine') end
  return co_yield(...)
end

function coroutine_patched.status(co)
  if busy[co] then return 'normal' end
  return co_status(co)
end

function coroutine_patched.running()
  local th = co_running()
  if th == nil or fiber_of[th] then return nil end
  return th
end

function coroutine_patched.wrap(fn)
  local co = co_create_patched(fn)
  local resume = co_resume_patched
  return function(...)
    return (function(ok, ...)
      if ok then return ... end
      error((...), 0)
    end)(resume(co, ...))
  end
end

if coroutine_patched.isyieldable then
  function coroutine_patched.isyieldable()
    local th = co_running()
    return th ~= nil and not fiber_of[th]
  end
end
_G.coroutine = coroutine_patched

---------------------------------------------------------------------------
-- Termination from Lua code (system.exit, forced close).
function K.terminate_vm()
  co_yield(TERMINATE)
end

function K.is_closing() return closing end
K.schedule = schedule
K.fiber_of = fiber_of
