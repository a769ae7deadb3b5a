-- TCP reads on a receive stream (a multishot receive into the executor's
-- provided buffers, src/executor/recv_multi.rs, lua/io_object.lua): bytes
-- the kernel already moved in belong to the socket and come in order,
-- never lost or twice, through partial reads, interruptions, cancel(),
-- receive with flags, release() (EBUSY while bytes are queued), a move to
-- a new object, EOF, a reset, close(), and bursts on more connections
-- than the ring has buffers.
local ip = require 'ip'
local L = require './loopback' -- outcome, listener, tcp_pair
local outcome = L.outcome
local acc = L.listener()
local function pair() return L.tcp_pair(acc) end
local function str(buf, n) return tostring(buf:slice(1, n)) end

-- Partial reads: one 10-byte write read 3 bytes at a time; the rest of
-- each CQE waits in the queue, in order.
local c, s = pair()
local small = byte_span.new(3)
s:read_some(byte_span.new(0)) -- an empty buffer: 0, nothing taken
c:write_some('abcdefghij')
local got = {}
for _ = 1, 4 do got[#got + 1] = str(small, s:read_some(small)) end
print('partial reads', table.concat(got, ' '))

-- Several writes while the reader is away: taken together, in order.
local big = byte_span.new(64)
for _, w in ipairs({ '1', '2', '34', '567' }) do c:write_some(w) end
local all = ''
while #all < 6 do all = all .. str(big, s:read_some(big)) end
print('queued writes', all)

-- A waiting reader interrupted: the op stays armed, the bytes that come
-- (also those its CQE already put in the reader's buffer before the wake)
-- go to the next read. Whether the write's CQE beats the interruption
-- depends on the turn: either way 'kept' arrives exactly once.
local early
local f = spawn(function()
  local ok, n = pcall(s.read_some, s, big)
  early = ok and str(big, n) or tostring(n)
end)
this_fiber.yield()
c:write_some('kept')
f:interrupt()
f:join()
c:write_some('!')
local rest = ''
while rest:sub(-1) ~= '!' do rest = rest .. str(big, s:read_some(big)) end
print('interrupted read and the next', (early == 'kept' and 'kept' or '') .. rest)
f = spawn(function() outcome('read interrupted:', s.read_some, s, big) end)
this_fiber.yield()
f:interrupt()
f:join()
c:write_some('later')
print('after the interruption', str(big, s:read_some(big)))

-- cancel() of a waiting read: operation_aborted; queued bytes stay.
f = spawn(function() outcome('read cancelled:', s.read_some, s, big) end)
this_fiber.yield()
s:cancel()
f:join()
c:write_some('xyz')
local one = byte_span.new(1)
print('after cancel', str(one, s:read_some(one)), str(big, s:read_some(big)))

-- Two fibers reading at once: each gets its own bytes, none twice.
local parts = {}
local r1 = spawn(function() local t = str(small, s:read_some(small)) parts[#parts + 1] = t end)
local r2 = spawn(function()
  local b = byte_span.new(3)
  local t = str(b, s:read_some(b))
  parts[#parts + 1] = t
end)
this_fiber.yield()
c:write_some('AAA')
this_fiber.yield()
c:write_some('BBB')
r1:join() r2:join()
table.sort(parts)
print('two readers', table.concat(parts, ' '))

-- receive with flags: queued bytes first. MSG_PEEK copies them, then a
-- read takes them; MSG_WAITALL completes from the kernel.
c:write_some('peekaboo')
s:read_some(byte_span.new(2)) -- 'pe' read, 'ekaboo' queued
print('peek', str(big, s:receive(big, 2)), str(big, s:read_some(big)))
c:write_some('wait')
s:read_some(byte_span.new(1)) -- 'ait' queued
spawn(function() this_fiber.yield() c:write_some('all') end):detach()
local six = byte_span.new(6)
print('waitall', s:receive(six, 256), tostring(six))

-- release() with bytes queued: EBUSY (nothing lost); once read, release()
-- cancels the armed op and waits for it, and the new object gets every
-- byte sent after (the old op took none of them).
c:write_some('left over')
s:read_some(byte_span.new(4))
local ok, e = pcall(s.release, s)
print('release with bytes queued:', ok, tostring(e.category), tostring(e), e.bytes)
print('then read', str(big, s:read_some(big)))
local fd = s:release()
local moved = ip.tcp.socket.new(fd)
c:write_some('after the move')
print('moved', str(big, moved:read_some(big)))

-- EOF after the last bytes: the bytes, then end of file (twice).
c:write_some('tail')
c:close()
print('before EOF', str(big, moved:read_some(big)))
outcome('EOF:', moved.read_some, moved, big)
outcome('EOF again:', moved.read_some, moved, big)
moved:close()

-- close() with bytes queued drops them, and the peer sees a reset (as a
-- close with unread bytes in the kernel makes it).
c, s = pair()
c:write_some('unread')
s:read_some(byte_span.new(1))
s:close()
outcome('peer after a close with bytes queued:', c.read_some, c, big)
c:close()

-- More connections than the ring has buffers (64), every reader armed,
-- then a message to each at once: buffers run out (ENOBUFS ends those
-- receives, re-armed by the next read); every message arrives whole.
local N = 150
local clients, servers, fibers, bad = {}, {}, {}, 0
for i = 1, N do clients[i], servers[i] = pair() end
for i = 1, N do
  fibers[i] = spawn(function()
    local b = byte_span.new(16)
    local text = ''
    while #text < 8 do text = text .. str(b, servers[i]:read_some(b:slice(1, 8 - #text))) end
    if text ~= string.format('msg%05d', i) then bad = bad + 1 end
  end)
end
this_fiber.yield()
for i = 1, N do clients[i]:write_some(string.format('msg%05d', i)) end
for i = 1, N do fibers[i]:join() end
print('burst', N, 'connections, mismatches', bad)
for i = 1, N do clients[i]:close() servers[i]:close() end

-- A socket collected while its receive is armed: the op is cancelled
-- (it held the descriptor open), so the descriptor closes and the peer
-- sees the end.
do
  local c2, s2 = pair()
  c2:write_some('x')
  s2:read_some(byte_span.new(1)) -- arms the stream's op
  s2 = nil
  collectgarbage()
  collectgarbage()
  outcome('peer after the collection:', c2.read_some, c2, big)
  c2:close()
end
