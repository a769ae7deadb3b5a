-- system's process calls (spec/io.md "system"): identity and credentials,
-- kill, system.signal and signal sets, system.spawn and subprocesses.
-- Compiled on the first `require 'system'` and merged into the system
-- table (lua/core/system.lua); P are the primitives of
-- src/modules/system.rs and src/modules/subprocess.rs (their invariants
-- hold there), IO the shared object machinery of lua/io_object.lua.
--
-- Invariants:
-- - User tables (spawn options) are read with rawget only and copied into
--   a fresh table before Rust sees them: no user metamethod runs while a
--   spawn is half prepared.
-- - A subprocess object's state (its Rust handle) lives in a weak-keyed
--   map out of user code's reach; the handle's collection is what sends
--   `signal_on_gcreaper` and hands the child to the background reaper.
-- - A signal set is an I/O object whose holder is its signalfd: `wait()`
--   is a ring read of one signalfd_siginfo, `cancel()` aborts pending
--   waits with operation_aborted.
local K, P, IO = ...
local rt = K.rt
local E = rt.errno
local raise_errno = K.raise_errno
local await_op, check_suspend, current = K.await_op, K.check_suspend, K.current
local type, error, setmetatable, next, rawget = type, error, setmetatable, next, rawget
local select = select
local new_span = byte_span.new

local system = {}

for _, name in next, {
  'getpid', 'getppid', 'getpgrp', 'getpgid', 'setpgid', 'getsid', 'setsid',
  'getresuid', 'getresgid', 'setresuid', 'setresgid', 'getgroups', 'setgroups',
  'kill',
} do
  system[name] = P[name]
end

-- The standard streams' [B] extras: dup() -> file_descriptor (a
-- close-on-exec copy), tcgetpgrp() and tcsetpgrp(pgid).
for n, methods in next, K.system_stream_methods do
  function methods.dup() return P.std_dup(n) end
  function methods.tcgetpgrp() return P.tcgetpgrp(n) end
  function methods.tcsetpgrp(_, pgid)
    if type(pgid) ~= 'number' then raise_errno(E.EINVAL, 2) end
    P.tcsetpgrp(n, pgid)
  end
end

---------------------------------------------------------------------------
-- system.signal
local signal = {}
for name, value in next, P.signal_numbers do signal[name] = value end
signal.raise, signal.default, signal.ignore = P.raise, P.default, P.ignore

local set_methods = {}
local set_mt = IO.class('system.signal.set', set_methods, {})
local SIGINFO_SIZE = P.signalfd_siginfo_size

local function change(self, op, sig, arg)
  local st = IO.state_of(self, set_mt)
  if op ~= 'clear' and type(sig) ~= 'number' then raise_errno(E.EINVAL, arg) end
  P.set_mask(st.registration, st.holder, op, sig, arg or 1)
end

function set_methods.add(self, sig) change(self, 'add', sig, 2) end
function set_methods.remove(self, sig) change(self, 'remove', sig, 2) end
function set_methods.clear(self) change(self, 'clear') end
function set_methods.cancel(self) IO.cancel_all(IO.state_of(self, set_mt)) end

-- wait() -> signal number [S]
function set_methods.wait(self)
  local st = IO.state_of(self, set_mt)
  local buf = new_span(SIGINFO_SIZE)
  IO.run_op(st, P.set_read, buf)
  return P.signo(buf)
end

signal.set = {
  new = function(...)
    for i = 1, select('#', ...) do
      if type((select(i, ...))) ~= 'number' then raise_errno(E.EINVAL, i) end
    end
    local holder, registration = P.set_new()
    local set = IO.new_object(set_mt, holder)
    IO.state_of(set).registration = registration
    for i = 1, select('#', ...) do
      local sig = select(i, ...)
      change(set, 'add', sig, i)
    end
    return set
  end,
}
system.signal = signal

---------------------------------------------------------------------------
-- system.spawn and subprocesses
local handles = setmetatable({}, { __mode = 'k' })
local sub_methods = {}
local function handle_of(self)
  local h = handles[self]
  if not h then raise_errno(E.EINVAL, 1) end
  return h
end
local function exit_status(self)
  local code, sig = P.exit(handle_of(self))
  if code == nil then raise_errno(E.EINVAL) end -- not waited for yet
  return code, sig
end
local sub_mt = IO.class('system.subprocess', sub_methods, {
  pid = function(self) return P.pid(handle_of(self)) end,
  exit_code = function(self) return (exit_status(self)) end,
  exit_signal = function(self) return select(2, exit_status(self)) end,
})

-- wait() [S]: until the child exited; then exit_code/exit_signal are set.
function sub_methods.wait(self)
  local h = handle_of(self)
  if P.exit(h) ~= nil then return end
  local f = current()
  check_suspend(f)
  local res = await_op(f, P.wait_op(h))
  if res < 0 then error(K.system_error(-res), 0) end
  P.exit(h)
end

function sub_methods.kill(self, sig)
  if type(sig) ~= 'number' then raise_errno(E.EINVAL, 2) end
  P.send_signal(handle_of(self), sig)
end

-- Options of Emilua's spawn that luring does not implement: refused, never
-- silently dropped.
local unsupported = {
  'ruid', 'euid', 'rgid', 'egid', 'extra_groups', 'set_ctty', 'foreground',
  'scheduler', 'nsenter_user', 'nsenter_mount', 'nsenter_uts', 'nsenter_ipc',
  'nsenter_net', 'pd_daemon',
}

local function is_integer(v) return type(v) == 'number' and v % 1 == 0 end

local function bad(name) raise_errno(E.EINVAL, name) end

function system.spawn(opts)
  if type(opts) ~= 'table' then raise_errno(E.EINVAL, 1) end
  for _, name in next, unsupported do
    if rawget(opts, name) ~= nil then raise_errno(E.ENOTSUP, name) end
  end
  local plan = { extra_fds = {} }
  local program = rawget(opts, 'program')
  if type(program) ~= 'string' then bad('program') end
  plan.program = program
  local args = rawget(opts, 'arguments')
  if args == nil then
    plan.arguments = { program }
  elseif type(args) ~= 'table' then
    bad('arguments')
  else
    local copy = {}
    for i = 1, #args do
      local a = rawget(args, i)
      if type(a) ~= 'string' then bad('arguments') end
      copy[i] = a
    end
    plan.arguments = copy
  end
  local env = rawget(opts, 'environment')
  local envp = {}
  if env == nil then env = rt.environment() end
  if type(env) ~= 'table' then bad('environment') end
  for k, v in next, env do
    if type(k) ~= 'string' or type(v) ~= 'string' or k:find('=', 1, true) then
      bad('environment')
    end
    envp[#envp + 1] = k .. '=' .. v
  end
  plan.environment = envp
  for _, name in next, { 'stdin', 'stdout', 'stderr' } do
    local v = rawget(opts, name)
    if type(v) == 'string' and v ~= 'share' then bad(name) end
    plan[name] = v
  end
  local extra = rawget(opts, 'extra_fds')
  if extra ~= nil then
    if type(extra) ~= 'table' then bad('extra_fds') end
    for k, v in next, extra do
      if not is_integer(k) or k < 3 or k > 9 then bad('extra_fds') end
      plan.extra_fds[k] = v
    end
  end
  local cwd = rawget(opts, 'working_directory')
  if cwd ~= nil and type(cwd) ~= 'string' then bad('working_directory') end
  plan.working_directory = cwd
  local umask = rawget(opts, 'umask')
  if umask ~= nil and (not is_integer(umask) or umask < 0 or umask > 511) then bad('umask') end
  plan.umask = umask
  local session = rawget(opts, 'start_new_session')
  if session ~= nil and type(session) ~= 'boolean' then bad('start_new_session') end
  plan.start_new_session = session == true
  local group = rawget(opts, 'process_group')
  if group ~= nil and (not is_integer(group) or group < 0 or group > 2147483647) then
    bad('process_group')
  end
  -- A session leader cannot change its process group.
  if group ~= nil and plan.start_new_session then bad('process_group') end
  plan.process_group = group
  local pdeathsig = rawget(opts, 'pdeathsig')
  if pdeathsig ~= nil and (not is_integer(pdeathsig) or pdeathsig < 1 or pdeathsig > 64) then
    bad('pdeathsig')
  end
  plan.pdeathsig = pdeathsig
  local gc_signal = rawget(opts, 'signal_on_gcreaper')
  if gc_signal == nil then gc_signal = signal.SIGTERM end
  if not is_integer(gc_signal) or gc_signal < 0 or gc_signal > 64 then
    bad('signal_on_gcreaper')
  end
  plan.signal_on_gcreaper = gc_signal
  local h = P.spawn(plan)
  local obj = setmetatable({}, sub_mt)
  handles[obj] = h
  return obj
end

return system
