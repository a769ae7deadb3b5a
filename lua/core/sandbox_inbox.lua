-- A sandboxed VM's inbox (moved out of lua/core/actors.lua): its host
-- feeds it over the control socket, a frame being read (ring RECV) only
-- while a fiber receives; EOF means the host is gone (no_senders); a
-- frame that breaks a rule closes the inbox. The frame buffer is Rust's
-- (src/actor/sandboxed/inside.rs). A lazy core chunk: K.sandbox_inbox_ready
-- loads it while a sandboxed VM is prepared, before its module comes; no
-- other VM holds this code.
--
-- Invariant: `set_receiving(true)` exactly while a fiber waits for the
-- host's frame (lua/core/actors.lua hands a frame that came with the
-- read's turn to `hand` then, and refuses a second receiver).
local K, close_inbox, set_receiving = ...
local rt = K.rt
local raise_core, error = K.raise_core, error
local control_next = rt.control_next
local host_gone = false
-- The awaited frame's value when it is a boolean or a number, handed over
-- with the turn that completed its read (K.relay_handed; inside.rs
-- ControlRead::after_turn): no rt.control_decode for it.
local host_handed

-- Made before the module comes: its first allocation cost ~0.15 ms there.
rt.control_prepare()

local function receive_from_host(f)
  if host_gone then raise_core('no_senders') end
  -- (a frame read ahead comes at once, decoded: inside.rs; control_next
  -- is the raw C path for the common cases, control_recv does the rest)
  local id, n, good, v = control_next()
  if not id then id, n, good, v = rt.control_recv() end
  if not n then
    set_receiving(true)
    host_handed = nil
    local ok
    ok, n = K.raw_pcall(K.await_op, f, id)
    set_receiving(false)
    if not ok then
      host_handed = nil
      error(n, 0)
    end
    -- (handed only with a read's frame, n > 0: the awaited read is the
    -- only one in flight)
    if host_handed ~= nil then good, v, host_handed = true, host_handed, nil end
  end
  if n < 0 then K.raise_errno_system(-n) end
  if n == 0 then
    host_gone = true
    raise_core('no_senders')
  end
  if good == nil then good, v = rt.control_decode(n) end
  if not good then
    close_inbox()
    raise_core('channel_closed')
  end
  return v
end

local function hand(v) host_handed = v end

return receive_from_host, hand
