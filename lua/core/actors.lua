-- Actors (spec/actors.md §1–3): the `spawn_vm` global (its options are
-- checked by lua/core/loader.lua, loaded on first use), tx-channel methods
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
local wake = K.wake
-- The raw yield and its token: send and receive suspend inline (K.suspend
-- without its frame and without reading `int_disabled`, see below).
local co_yield, SUSPEND = K.co_yield, K.SUSPEND
local W1, INTERRUPTER = K.W1, K.INTERRUPTER
local fiber_for_message, check_yieldable = K.fiber_for_message, K.check_yieldable
local INTERRUPTED = K.INTERRUPTED
local select, type, getfenv = select, type, getfenv
local REAL_G = _G

local CLOSED, NO_SENDERS, GOT = {}, {}, {}

-- The rest runs inside `define` (called at the end), so the functions
-- below copy the locals above from its closure instead of looking each
-- up in LuaJIT's list of open upvalues (lua/core/scheduler.lua, where
-- `define` is explained).
local function define()

---------------------------------------------------------------------------
-- tx-channel
-- send id -> fiber (its `send_to`: the address box). An id is unique
-- among this VM's sends in flight; the scalar path reuses the ids of
-- finished sends (free_ids), so `sends` stays a small array instead of
-- taking a new hash key per message. An id leaves use only when no
-- receipt can come for it any more: its receipt came, its message was
-- withdrawn or never queued.
local sends = {}
local send_seq = 0
local free_ids, nfree = {}, 0
local function release_id(id)
  nfree = nfree + 1
  free_ids[nfree] = id
end
local chan_withdraw = rt.chan_withdraw

local function send_interrupter(f, id)
  -- A message already taken by a receiver cannot be withdrawn: the send
  -- succeeds when its receipt arrives.
  if chan_withdraw(f.send_to, id) then
    sends[id] = nil
    release_id(id)
    K.actor_waits = K.actor_waits - 1
    wake(f, INTERRUPTED)
  end
end

-- handle -> its address box (src/actor/raw_calls.rs): scalars and flat tables go out
-- through chan_send_fast; dropped when the handle is closed or collected.
local boxes = setmetatable({}, { __mode = 'k' })
local chan_box, chan_send_fast = rt.chan_box, rt.chan_send_fast

local tx_methods = {}
function tx_methods.send(self, ...)
  -- (yieldability: chan_send_fast checks it, check_yieldable below when
  -- it did not send)
  local f = fiber_for_message()
  local m = ...
  if m == nil and select('#', ...) < 1 then raise_errno(E.EINVAL) end
  local box = boxes[self]
  if box == nil then
    box = chan_box(self)
    if box then boxes[self] = box end
  end
  local id, queued
  if box then
    -- scalars and flat tables: a reused id (see `sends`)
    if nfree > 0 then
      id, nfree = free_ids[nfree], nfree - 1
    else
      send_seq = send_seq + 1
      id = send_seq
    end
    queued = chan_send_fast(box, m, id)
  end
  if queued == nil then
    if id then release_id(id) end
    check_yieldable()
    -- a new id: one that an error below leaves unused is never reused
    send_seq = send_seq + 1
    id = send_seq
    queued = rt.chan_send(self, m, id)
  end
  if not queued then
    release_id(id)
    raise_core('channel_closed')
  end
  sends[id] = f
  -- (for a withdraw; left in the record afterwards: a box is no sender)
  f.send_to = box
  K.actor_waits = K.actor_waits + 1
  -- suspend(f, send_interrupter, id), inlined. The interrupter is left
  -- even while interruption is disabled: fiber:interrupt() calls it only
  -- when `int_disabled` is 0 (lua/core/fibers.lua), which cannot change
  -- while the fiber waits. (Reading that field here misses the record and
  -- goes through its metatable.)
  f[INTERRUPTER], f[W1] = send_interrupter, id
  local r = co_yield(SUSPEND)
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
-- The number or boolean the host handed to this step with the wake-up
-- (src/actor/host.rs, Mailbox::take_handable): the oldest message, one
-- that owes no receipt or owes it to a VM of this thread (the host posts
-- it once the step ended, unless the message was given back). A receive
-- takes it before asking Rust (so a queued message never passes it); the
-- step gives it back at its end if none did (K.give_back_handed), and
-- closing the inbox drops it like any queued message. held[1] says
-- whether one is held (a table shared with the scheduler, which looks at
-- the end of each step: K.handed_held; and Rust, after a step that ended
-- the VM).
local handed_v
local held = K.handed_held
local function take_handed()
  local v = handed_v
  handed_v, held[1] = nil, false
  return v
end
function K.give_back_handed()
  rt.inbox_put_back(take_handed())
end
-- Closes the inbox; a handed message still held is dropped with the
-- queued ones (its sender, if any, gets "refused"; one received in this
-- step is "delivered", src/actor/channels.rs).
local function close_inbox()
  local dropped = held[1]
  if dropped then take_handed() end
  rt.inbox_close(dropped)
end

-- A sandboxed VM's inbox is fed by its host over the control socket: a
-- frame is read (ring RECV) only while a fiber receives; EOF means the
-- host is gone (no_senders); a frame that breaks a rule closes the inbox.
-- The frame buffer is Rust's (src/actor/sandboxed/inside.rs).
-- That code is lua/core/sandbox_inbox.lua (`receive_from_host`), loaded by
-- K.sandbox_inbox_ready, which a sandboxed VM's preparation calls before
-- its module comes (src/actor/vm.rs prepare_sandboxed; pooled, before
-- the spawn): no other VM holds it. `host_receiving`: a fiber waits in
-- receive for the host's frame (set by that code).
local host_receiving = false
local receive_from_host, hand_to_host
function K.sandbox_inbox_ready()
  if not receive_from_host then
    receive_from_host, hand_to_host = rt.core_chunk('sandbox_inbox', REAL_G)(K, close_inbox,
      function(v) host_receiving = v end)
  end
end

-- For the scheduler's turns while this VM reads sandboxes' frames: a fiber
-- waits in receive, so a number or boolean frame may be handed to it with
-- the turn instead of posted (src/actor/sandboxed/ring_relay.rs HandOver:
-- only when the inbox was empty, so it passes no queued message).
function K.inbox_receiving() return receiver ~= false end
function K.relay_handed(v)
  -- Inside a sandbox: the frame its awaited read brought.
  if host_receiving then
    hand_to_host(v)
    return
  end
  local r = receiver
  if not r then
    -- (nothing runs between the turn and here to end the wait, but if
    -- something did, the message waits at the head of the inbox)
    rt.inbox_put_back(v)
    return
  end
  receiver = false
  K.actor_waits = K.actor_waits - 1
  received = v
  wake(r, GOT)
end

local function receive_interrupter(f)
  receiver = false
  K.actor_waits = K.actor_waits - 1
  wake(f, INTERRUPTED)
end

local inbox_take, inbox_unstash = rt.inbox_take, rt.inbox_unstash
local rx_methods = {}
function rx_methods.receive(_)
  local f = fiber_for_message()
  if receiver or host_receiving then
    if rt.inbox_closed() then raise_core('channel_closed') end
    raise_errno(E.EBUSY)
  end
  -- (no call into Rust: see handed_v)
  if held[1] then return take_handed() end
  -- (a closed inbox answers 2 before anything else)
  local kind, v = inbox_take()
  if kind == 1 then return v end
  if kind == 4 then return inbox_unstash() end
  -- A queued message was returned without suspending; from here on the
  -- fiber may suspend (a C call: checked only now).
  check_yieldable()
  if kind == 2 then raise_core('channel_closed') end
  if K.sandboxed then return receive_from_host(f) end
  if kind == 3 then raise_core('no_senders') end
  receiver = f
  K.actor_waits = K.actor_waits + 1
  -- suspend(f, receive_interrupter), inlined (see send)
  f[INTERRUPTER] = receive_interrupter
  local r = co_yield(SUSPEND)
  if r == GOT then
    v, received = received, nil
    return v
  end
  if r == INTERRUPTED then raise_core('interrupted') end
  if r == CLOSED then raise_core('channel_closed') end
  raise_core('no_senders')
end
function rx_methods.close(_)
  close_inbox()
end

-- Unknown keys of a channel or the inbox: bad_index (the method tables
-- are the objects' __index; their own lookups end here).
local function no_such_key() raise_core('bad_index', 'index', 2) end
-- A sandboxed actor's channel (spawn_vm{ sandbox = {} }): its methods are
-- lua/core/sandboxes.lua, loaded before the first such channel can exist
-- (this VM's first sandbox spawn; a sandboxed VM's boot): most actors
-- never hold one. A load that failed (out of memory) is tried again.
local ipc_ready = false
function K.sandbox_methods_ready()
  if not ipc_ready then
    rt.core_chunk('sandboxes', REAL_G)(K)
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
  if not inbox_required then close_inbox() end
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
    nfree = nfree + 1 -- release_id(id)
    free_ids[nfree] = id
    K.actor_waits = K.actor_waits - 1
    wake(f, ok or CLOSED)
  end
end
-- `rid`, `rok`: the one receipt the host took out of the mailbox (its
-- send id, delivered), nil if none; `rid` -1: several, mailbox_poll has
-- them (src/actor/vm.rs `Receipts`). `hv`: the message the host handed
-- over with them (see handed_v), nil if none.
function K.actor_poll(rid, rok, hv)
  local r = receiver
  local kind, v = 0, nil
  -- Held until a fiber waiting in receive gets it below (held[1] is
  -- false exactly once a fiber has it: see handed_v).
  if hv ~= nil then handed_v, held[1] = hv, true end
  if rid == -1 then
    -- the first receipt comes as return values, the rest in rbuf (the
    -- message too, unless one was handed over)
    local n, id, ok
    local k, m
    n, k, m, id, ok = mailbox_poll(rbuf, r and hv == nil)
    if hv == nil then kind, v = k, m end
    if n > 0 then
      receipt(id, ok)
      for i = 1, 2 * (n - 1), 2 do
        id, ok = rbuf[i], rbuf[i + 1]
        rbuf[i], rbuf[i + 1] = nil, nil
        receipt(id, ok)
      end
    end
  else
    -- receipt(rid, rok), inlined: the usual step (one receipt)
    local f = rid and sends[rid]
    if f then
      sends[rid] = nil
      nfree = nfree + 1 -- release_id(rid)
      free_ids[nfree] = rid
      K.actor_waits = K.actor_waits - 1
      wake(f, rok or CLOSED)
    end
    if r and hv == nil then kind, v = inbox_take() end
  end
  if r then
    -- (after the receipts: a message that fails to build wakes no one,
    -- but the senders whose receipts came are woken)
    if hv ~= nil then
      kind, v = 1, take_handed()
    elseif kind == 4 then
      kind, v = 1, inbox_unstash()
    end
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
-- spawn_vm(module | options): checked and resolved by lua/core/loader.lua
-- (loaded on first use, see modules.lua), against the caller's globals.
function spawn_vm(arg) -- luacheck: ignore (a global, like Emilua's)
  K.leave_alone() -- the new VM must get its turns (even while this one spins)
  return K.spawn_vm(arg, getfenv(2))
end

-- Each actor owns one ring and one run queue, driven by exactly one
-- thread: a second thread in the same context would have nothing it could
-- run. Use spawn_vm{inherit_context=false} for parallelism.
function spawn_context_threads(n) -- luacheck: ignore (a global, like Emilua's)
  if type(n) ~= 'number' then raise_errno(E.EINVAL, 1) end
  if n <= 0 then return end
  raise_errno(E.ENOTSUP)
end
end -- define (its body is not indented, to keep the history readable)
define()
