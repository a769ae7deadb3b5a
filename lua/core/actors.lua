-- Actors (spec/actors.md §1–3): the `spawn_vm` global, tx-channel methods
-- and the `inbox` module. Messages are copied by Rust
-- (src/actor/channels.rs, message.rs); this file keeps the fibers waiting
-- on them.
--
-- Invariants:
-- - A fiber blocked in send is in `sends` (send id -> fiber) until its
--   receipt arrives or its interrupter withdrew the message; one blocked
--   in receive is `receiver`. K.actor_waits counts both, so the scheduler
--   does not call an idle VM done while they may still be woken.
-- - Every wait checks suspendability before registering (check_suspend).
-- - The runtime holds the inbox object only while the main fiber runs;
--   then a collection closes it once user code drops it too.
local K = ...
local rt = K.rt
local E = rt.errno
local raise_core, raise_errno = K.raise_core, K.raise_errno
local check_suspend, suspend, wake = K.check_suspend, K.suspend, K.wake
local fiber_or_nil, suspendable_fiber = K.fiber_or_nil, K.suspendable_fiber
local INTERRUPTED = K.INTERRUPTED
local select, type, getfenv = select, type, getfenv
local span_new = byte_span.new

local CLOSED, NO_SENDERS, GOT = {}, {}, {}

---------------------------------------------------------------------------
-- tx-channel
local sends = {}      -- send id -> fiber
local send_seq = 0

local function send_interrupter(f, id)
  -- A message already taken by a receiver cannot be withdrawn: the send
  -- succeeds when its receipt arrives.
  if rt.chan_withdraw(id) then
    sends[id] = nil
    K.actor_waits = K.actor_waits - 1
    wake(f, INTERRUPTED)
  end
end

-- handle -> its address box (src/actor/raw_calls.rs): scalars go out
-- through chan_send_fast; dropped when the handle is closed or collected.
local boxes = setmetatable({}, { __mode = 'k' })
local chan_box, chan_send_fast = rt.chan_box, rt.chan_send_fast

local tx_methods = {}
function tx_methods.send(self, ...)
  local f = suspendable_fiber()
  local m = ...
  if m == nil and select('#', ...) < 1 then raise_errno(E.EINVAL) end
  send_seq = send_seq + 1
  local id = send_seq
  local box = boxes[self]
  if box == nil then
    box = chan_box(self)
    if box then boxes[self] = box end
  end
  local queued
  if box then queued = chan_send_fast(box, m, id) end
  if queued == nil then queued = rt.chan_send(self, m, id) end
  if not queued then raise_core('channel_closed') end
  sends[id] = f
  K.actor_waits = K.actor_waits + 1
  local r = suspend(f, send_interrupter, id)
  if r == INTERRUPTED then raise_core('interrupted') end
  if r == CLOSED then raise_core('channel_closed') end
end
function tx_methods.close(self)
  rt.chan_close(self)
  boxes[self] = nil
end

---------------------------------------------------------------------------
-- inbox
local receiver = false     -- the fiber blocked in receive
local received             -- what it gets, with the wake value GOT
local inbox_obj            -- the runtime's reference (while main runs)
local inbox_required = false

-- A sandboxed VM's inbox is fed by its host over the control socket: a
-- frame is read (ring RECV) only while a fiber receives; EOF means the
-- host is gone (no_senders); a frame that breaks a rule closes the inbox.
local host_receiving = false
local host_gone = false
local frame_buf
local function receive_from_host(f)
  if host_gone then raise_core('no_senders') end
  host_receiving = true
  frame_buf = frame_buf or span_new(rt.max_frame_bytes)
  local buf = frame_buf
  local ok, n = K.raw_pcall(K.await_op, f, rt.control_recv(buf))
  host_receiving = false
  if not ok then error(n, 0) end
  if n < 0 then K.raise_errno_system(-n) end
  if n == 0 then
    host_gone = true
    raise_core('no_senders')
  end
  local good, v = rt.control_decode(buf, n)
  if not good then
    rt.inbox_close()
    raise_core('channel_closed')
  end
  return v
end

local function receive_interrupter(f)
  receiver = false
  K.actor_waits = K.actor_waits - 1
  wake(f, INTERRUPTED)
end

local inbox_take, inbox_unstash = rt.inbox_take, rt.inbox_unstash
local rx_methods = {}
function rx_methods.receive(_)
  local f = suspendable_fiber()
  if receiver or host_receiving then
    if rt.inbox_closed() then raise_core('channel_closed') end
    raise_errno(E.EBUSY)
  end
  -- (a closed inbox answers 2 before anything else)
  local kind, v = inbox_take()
  if kind == 1 then return v end
  if kind == 4 then return inbox_unstash() end
  if kind == 2 then raise_core('channel_closed') end
  if K.sandboxed then return receive_from_host(f) end
  if kind == 3 then raise_core('no_senders') end
  receiver = f
  K.actor_waits = K.actor_waits + 1
  local r = suspend(f, receive_interrupter)
  if r == GOT then
    v, received = received, nil
    return v
  end
  if r == INTERRUPTED then raise_core('interrupted') end
  if r == CLOSED then raise_core('channel_closed') end
  raise_core('no_senders')
end
function rx_methods.close(_)
  rt.inbox_close()
end

-- Unknown keys of a channel or the inbox: bad_index (the method tables
-- are the objects' __index; their own lookups end here).
local function no_such_key() raise_core('bad_index', 'index', 2) end
---------------------------------------------------------------------------
-- A sandboxed actor's channel (spawn_vm{ sandbox = {} }): send writes one
-- frame (not a rendezvous: it completes once the packet is written).
local ipc_methods = {}
function ipc_methods.send(self, ...)
  local f = fiber_or_nil()
  check_suspend(f)
  if select('#', ...) < 1 then raise_errno(E.EINVAL) end
  local id, slots = rt.sandbox_send(self, (...))
  if not slots then
    local n = K.await_op(f, id)
    if n < 0 then K.raise_errno_system(-n) end
    return
  end
  -- The message's fds sit in the sandbox's table already: a frame that
  -- never left (interrupted, failed) takes them out again.
  local ok, n = K.raw_pcall(K.await_op, f, id)
  if not ok or n < 0 then rt.sandbox_clear_slots(self, slots) end
  if not ok then error(n, 0) end
  if n < 0 then K.raise_errno_system(-n) end
end
function ipc_methods.close(self) rt.sandbox_close(self) end
function ipc_methods.kill(self, signo) rt.sandbox_kill(self, signo) end
function ipc_methods.detach(self) rt.sandbox_detach(self) end
local function ipc_index(self, key)
  local m = ipc_methods[key]
  if m then return m end
  if key == 'child_pid' then return rt.sandbox_child_pid(self) end
  raise_core('bad_index', 'index', 2)
end
-- The sandbox rt functions are built on first use (src/actor/vm.rs
-- LAZY_RT): their channels get these methods before the first one can
-- exist (this VM's first sandbox spawn; a sandboxed VM's boot).
local ipc_ready = false
function K.sandbox_methods_ready()
  if not ipc_ready then
    rt.set_sandbox_methods(ipc_index)
    ipc_ready = true
  end
end

setmetatable(tx_methods, { __index = no_such_key, __metatable = false })
setmetatable(rx_methods, { __index = no_such_key, __metatable = false })
rt.set_actor_methods(tx_methods, rx_methods)

K.builtin_modules.inbox = function()
  inbox_required = true
  if not inbox_obj then inbox_obj = rt.inbox_object() end
  return inbox_obj
end

-- The main fiber ended: an inbox never required closes now; otherwise the
-- runtime lets go of it (a collection closes it once nobody holds it).
function K.actors_main_finished()
  if not inbox_required then rt.inbox_close() end
  inbox_obj = nil
end

---------------------------------------------------------------------------
-- What other actors left in the mailbox (called by the host before a step).
local rbuf = {}
local mailbox_poll = rt.mailbox_poll
local function receipt(id, ok)
  local f = sends[id]
  if f then
    sends[id] = nil
    K.actor_waits = K.actor_waits - 1
    wake(f, ok or CLOSED)
  end
end
-- `rid`, `rok`: the one receipt the host took out of the mailbox (its
-- send id, delivered), nil if none; `rid` -1: several, mailbox_poll has
-- them (src/actor/vm.rs `Receipts`).
function K.actor_poll(rid, rok)
  local r = receiver
  local kind, v = 0, nil
  if rid == -1 then
    -- the first receipt comes as return values, the rest in rbuf
    local n, id, ok
    n, kind, v, id, ok = mailbox_poll(rbuf, r and true or false)
    if n > 0 then
      receipt(id, ok)
      for i = 1, 2 * (n - 1), 2 do
        id, ok = rbuf[i], rbuf[i + 1]
        rbuf[i], rbuf[i + 1] = nil, nil
        receipt(id, ok)
      end
    end
  else
    if rid then receipt(rid, rok) end
    if r then kind, v = inbox_take() end
  end
  if r then
    -- (after the receipts: a message that fails to build wakes no one,
    -- but the senders whose receipts came are woken)
    if kind == 4 then kind, v = 1, inbox_unstash() end
    if kind ~= 0 then
      receiver = false
      K.actor_waits = K.actor_waits - 1
      if kind == 1 then
        received = v
        wake(r, GOT)
      else
        wake(r, kind == 2 and CLOSED or NO_SENDERS)
      end
    end
  end
end

---------------------------------------------------------------------------
-- spawn_vm(module | options)
local function bool_option(opts, name)
  local v = opts[name]
  if v ~= nil and type(v) ~= 'boolean' then raise_errno(E.EINVAL, name) end
  return v
end

-- spawn_vm{ sandbox = {...} } options (docs/guide/sandboxes.md): checked
-- here into a plain table for rt.spawn_sandboxed. An unknown key or a bad
-- value is EINVAL naming it ('sandbox/memory'): nothing is granted, or
-- weakened, silently.
local MAX_INT = 2^53 - 1
local function count_in(v, lo, hi)
  return type(v) == 'number' and v % 1 == 0 and v >= lo and v <= hi
end

local function plain_table(v)
  return type(v) == 'table' and K.debug.getmetatable(v) == nil
end

-- A list of 1..n (no other key) whose members pass `check`, or nil.
local function list_of(v, check, max)
  if not plain_table(v) then return nil end
  local n = #v
  if n > max then return nil end
  for k in pairs(v) do
    if not count_in(k, 1, n) then return nil end
  end
  for i = 1, n do
    if not check(v[i]) then return nil end
  end
  return v
end

local function absolute_path(p)
  return type(p) == 'string' and p:sub(1, 1) == '/' and not p:find('\0', 1, true)
    and #p < 4096
end

local function port(p) return count_in(p, 0, 65535) end

local MAX_PATHS, MAX_PORTS = 64, 64
local sandbox_checks = {
  read_only = function(v) return list_of(v, absolute_path, MAX_PATHS) end,
  read_write = function(v) return list_of(v, absolute_path, MAX_PATHS) end,
  network = function(v)
    if v == 'none' then return false end
    if v == 'loopback' then return { tcp_bind = {}, tcp_connect = {} } end
    if not plain_table(v) then return nil end
    local out = {}
    for k, ports in pairs(v) do
      if k ~= 'tcp_bind' and k ~= 'tcp_connect' then return nil end
      out[k] = list_of(ports, port, MAX_PORTS)
      if not out[k] then return nil end
    end
    out.tcp_bind = out.tcp_bind or {}
    out.tcp_connect = out.tcp_connect or {}
    return out
  end,
  limits = function(v)
    if not plain_table(v) then return nil end
    for k, n in pairs(v) do
      if k == 'open_files' then
        if not count_in(n, 16, 65536) then return nil end
      elseif k == 'processes' then
        if not count_in(n, 4, 4096) then return nil end
      else
        return nil
      end
    end
    return { open_files = v.open_files, processes = v.processes }
  end,
  memory = function(v) return count_in(v, 2^20, MAX_INT) and v or nil end,
  cpu_seconds = function(v) return count_in(v, 1, 2^31) and v or nil end,
  allow_weaker = function(v)
    local names = { landlock = true }
    return list_of(v, function(n) return names[n] == true end, 8)
  end,
}

local function sandbox_options(sandbox)
  local out = {}
  for key, value in pairs(sandbox) do
    local check = type(key) == 'string' and sandbox_checks[key]
    if not check then
      raise_errno(E.EINVAL, 'sandbox/' .. (type(key) == 'string' and key or '?'))
    end
    local v = check(value)
    if v == nil then raise_errno(E.EINVAL, 'sandbox/' .. key) end
    out[key] = v
  end
  if out.network == false then out.network = nil end
  if out.allow_weaker then
    local weaker = {}
    for _, name in ipairs(out.allow_weaker) do weaker[name] = true end
    out.allow_weaker = weaker
  end
  return out
end

-- Emilua's `subprocess = {...}` checked and copied (spec/actors.md §5). It
-- runs in the same sandbox as `sandbox = {}`, which always makes every
-- namespace: the newns_* flags are checked, never needed. Unknown keys are
-- refused, naming them (nothing is ignored).
local newns_flags = { newns_uts = true, newns_ipc = true, newns_pid = true,
  newns_user = true, newns_net = true, newns_mount = true }
local function subprocess_plan(opts)
  if type(opts) ~= 'table' or K.debug.getmetatable(opts) ~= nil then
    raise_errno(E.EINVAL, 'subprocess')
  end
  local plan = { environment = {} }
  for key, v in next, opts do
    local name = 'subprocess/' .. (type(key) == 'string' and key or '?')
    if newns_flags[key] then
      if type(v) ~= 'boolean' then raise_errno(E.EINVAL, name) end
    elseif key == 'environment' then
      if type(v) ~= 'table' or K.debug.getmetatable(v) ~= nil then raise_errno(E.EINVAL, name) end
      for k, x in next, v do
        if type(k) ~= 'string' or type(x) ~= 'string' or k == '' or k:find('=', 1, true)
          or k:find('\0', 1, true) or x:find('\0', 1, true) then
          raise_errno(E.EINVAL, name)
        end
        plan.environment[k] = x
      end
    elseif key == 'stdin' or key == 'stdout' or key == 'stderr' then
      -- 'share', a file_descriptor (checked by the runtime) or nil
      if type(v) == 'string' and v ~= 'share' then raise_errno(E.EINVAL, name) end
      if type(v) ~= 'string' and type(v) ~= 'userdata' then raise_errno(E.EINVAL, name) end
      plan[key] = v
    elseif key == 'init' then
      -- Init scripts (root-run setup in the child) are not provided: the
      -- sandbox's set-up is luring's own.
      raise_errno(E.ENOTSUP, name)
    else
      raise_errno(E.EINVAL, name)
    end
  end
  return plan
end

function spawn_vm(arg) -- luacheck: ignore (a global, like Emilua's)
  K.leave_alone() -- the new VM must get its turns (even while this one spins)
  local module, new_thread, new_master, monitor = nil, false, false, false
  if type(arg) == 'string' then
    module = arg
  elseif type(arg) == 'table' then
    if K.debug.getmetatable(arg) ~= nil then raise_errno(E.EINVAL, 1) end
    module = arg.module
    if module == nil then module = '' end
    if type(module) ~= 'string' then raise_errno(E.EINVAL, 'module') end
    local subprocess = arg.subprocess
    local inherit = bool_option(arg, 'inherit_context')
    local master = bool_option(arg, 'new_master')
    if subprocess ~= nil then
      if inherit ~= nil or master ~= nil or arg.sandbox ~= nil then raise_errno(E.EINVAL, 1) end
      local plan = subprocess_plan(subprocess)
      if module == '' then raise_core('invalid_module_name') end
      if K.sandboxed then raise_errno(E.ENOTSUP) end
      return K.spawn_sandboxed_module(module, getfenv(2), bool_option(arg, 'monitor') == true,
        nil, plan)
    end
    local sandbox = arg.sandbox
    if sandbox ~= nil then
      if type(sandbox) ~= 'table' or K.debug.getmetatable(sandbox) ~= nil then
        raise_errno(E.EINVAL, 'sandbox')
      end
      local options = sandbox_options(sandbox)
      if inherit ~= nil or master ~= nil then raise_errno(E.EINVAL, 1) end
      if module == '' then raise_core('invalid_module_name') end
      if K.sandboxed then raise_errno(E.ENOTSUP) end
      return K.spawn_sandboxed_module(module, getfenv(2), bool_option(arg, 'monitor') == true,
        options)
    end
    new_thread = inherit == false
    new_master = master == true
    monitor = bool_option(arg, 'monitor') == true
    local hint = arg.concurrency_hint
    if hint ~= nil and hint ~= 'safe' and (type(hint) ~= 'number' or hint % 1 ~= 0) then
      raise_errno(E.EINVAL, 'concurrency_hint')
    end
  else
    raise_errno(E.EINVAL, 1)
  end
  if module == '' then raise_core('invalid_module_name') end
  -- A sandboxed actor's ring is the only one it may have (seccomp denies
  -- io_uring_setup): it cannot host more VMs.
  if K.sandboxed then raise_errno(E.ENOTSUP) end
  return K.spawn_module(module, getfenv(2), new_thread, new_master, monitor)
end

-- Each actor owns one ring and one run queue, driven by exactly one
-- thread: a second thread in the same context would have nothing it could
-- run. Use spawn_vm{inherit_context=false} for parallelism.
function spawn_context_threads(n) -- luacheck: ignore (a global, like Emilua's)
  if type(n) ~= 'number' then raise_errno(E.EINVAL, 1) end
  if n <= 0 then return end
  raise_errno(E.ENOTSUP)
end
