-- Round trips with a sandboxed actor: N messages of each kind, the kind
-- given as arguments[4]: 'plain' ({ n = i }), 'fd' (one pipe end, which
-- the host's ring installs in the sandbox's table; the sandbox closes it),
-- 'fd_back' (the same, and the sandbox sends it back: FIXED_FD_INSTALL
-- and SCM_RIGHTS). Prints ns per round trip.
local inbox = require 'inbox'
local pipe = require 'pipe'
local time = require 'time'
local args = require('system').arguments
local n = tonumber(args[3])
local kind = args[4]
local ch = spawn_vm{ module = '/sandbox_fd_echo', sandbox = {} }
local r, w = pipe.pair()
local fd = r:release()
local function one(i)
  if kind == 'plain' then
    ch:send{ n = i, reply = inbox }
  else
    ch:send{ n = i, fd = fd, back = kind == 'fd_back', reply = inbox }
  end
  local m = inbox:receive()
  if m.fd then m.fd:close() end
end
one(0) -- warm up
local t0 = time.steady_clock.now()
for i = 1, n do one(i) end
print('ns_per_op', (time.steady_clock.now() - t0) / n * 1e9)
ch:close()
