-- The methods of a sandboxed actor's channel (spawn_vm{ sandbox = {} }),
-- a lazy core chunk: K.sandbox_methods_ready (lua/core/actors.lua) loads
-- it before this VM's first such channel can exist (its first sandbox
-- spawn; a sandboxed VM's boot), so most actors never hold this code.
--
-- Invariant: `send` writes one frame (not a rendezvous: it completes once
-- the packet is written); a frame that never left takes back the fds and
-- routes it added.
local K = ...
local rt = K.rt
local E = rt.errno
local select = select
local raise_core, raise_errno = K.raise_core, K.raise_errno
local fiber_or_nil, check_suspend = K.fiber_or_nil, K.check_suspend

local ipc_methods = {}
function ipc_methods.send(self, ...)
  local f = fiber_or_nil()
  check_suspend(f)
  if select('#', ...) < 1 then raise_errno(E.EINVAL) end
  -- (the send may complete at once: no wait. On the host only a
  -- boolean, number or short string does: src/actor/sandboxed/host.rs)
  local id, slots, n, routes = rt.sandbox_send(self, (...), K.may_complete_inline())
  if not slots and not routes then
    if not n then n = K.await_op(f, id) end
    if n < 0 then K.raise_errno_system(-n) end
    return
  end
  -- The message's fds sit in the sandbox's table already, and its new
  -- routes in the route table: a frame that never left (interrupted,
  -- failed) takes them out again.
  local ok, n = K.raw_pcall(K.await_op, f, id)
  if not ok or n < 0 then
    if slots then rt.sandbox_clear_slots(self, slots) end
    if routes then rt.sandbox_revoke_routes(self, routes) end
  end
  if not ok then error(n, 0) end
  if n < 0 then K.raise_errno_system(-n) end
end
function ipc_methods.close(self) rt.sandbox_close(self) end
function ipc_methods.kill(self, signo) rt.sandbox_kill(self, signo) end
function ipc_methods.detach(self) rt.sandbox_detach(self) end

-- (the sandbox rt functions are built on first use: src/actor/vm.rs LAZY_RT)
rt.set_sandbox_methods(function(self, key)
  local m = ipc_methods[key]
  if m then return m end
  if key == 'child_pid' then return rt.sandbox_child_pid(self) end
  raise_core('bad_index', 'index', 2)
end)
