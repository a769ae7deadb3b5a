-- The fast path of TCP read_some/write_some/receive/send
-- (src/modules/fast_io.rs): after the first op on a buffer, later ones on
-- it go through a cached handle. Ops in flight there are interrupted,
-- cancelled and closed like any op, release() is EBUSY meanwhile, and
-- nothing sent is lost or reordered whichever path carried it.
local ip = require 'ip'
local L = require './loopback' -- outcome, listener, tcp_pair
local outcome = L.outcome
local acc = L.listener()
local c, s = L.tcp_pair(acc)
local f

-- one receive buffer, used first so that later reads take the fast path
local buf = byte_span.new(16)
c:write_some('warm')
print('first read', tostring(buf:slice(1, s:read_some(buf))))

-- pending reads on the cached buffer: interrupted, cancelled, closed
f = spawn(function() outcome('read interrupted:', s.read_some, s, buf) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() outcome('receive cancelled:', s.receive, s, buf) end)
this_fiber.yield()
outcome('release while reading:', s.release, s)
s:cancel()
f:join()

-- nothing sent meanwhile was lost: spans (cached for writes after the
-- first), a slice, a string and flags (the primitive) arrive in order
local w = byte_span.new(3)
for i = 1, 3 do w[i] = 64 + i end
c:write_some(w)
c:send(w)
c:write_some(w:slice(2, 3))
c:write_some('-s-')
c:send(w, ip.message_flag.do_not_route)
local got = {}
local total = 0
while total < 3 + 3 + 2 + 3 + 3 do
  local n = s:receive(buf)
  total = total + n
  got[#got + 1] = tostring(buf:slice(1, n))
end
print('received', table.concat(got), total)

-- reads on the cached buffer after the peer closed: end of file each time
c:close()
outcome('read after the peer closed:', s.read_some, s, buf)
outcome('again (cached):', s.read_some, s, buf)

-- closed under a pending read on the cached buffer; then EBADF
local c2 = ip.tcp.socket.new()
f = spawn(function() return acc:accept() end)
c2:connect('127.0.0.1', acc.local_port)
local s2 = f:join()
c2:write_some('x')
s2:read_some(buf)
f = spawn(function() outcome('read closed under:', s2.read_some, s2, buf) end)
this_fiber.yield()
s2:close()
f:join()
outcome('read after close:', s2.read_some, s2, buf)
outcome('write after close:', s2.write_some, s2, w)
c2:close()
acc:close()
