-- ops in flight on ip sockets: interruption, close(), cancel(), release()
-- -> EBUSY, for accept, connect-free reads, receive_from
local ip = require 'ip'
local L = require './loopback' -- outcome, listener
local outcome = L.outcome
local acc = L.listener()

-- interrupting accept: interrupted; the acceptor still works afterwards
local f = spawn(function() outcome('accept interrupted:', acc.accept, acc) end)
this_fiber.yield()
f:interrupt()
f:join()
-- release with an accept pending: EBUSY; cancel(): operation_aborted
f = spawn(function() outcome('accept cancelled:', acc.accept, acc) end)
this_fiber.yield()
outcome('release while accepting:', acc.release, acc)
acc:cancel()
f:join()
local c = ip.tcp.socket.new()
f = spawn(function() return acc:accept() end)
c:connect('127.0.0.1', acc.local_port)
local s = f:join()
print('accept after interruption works:', s.is_open)

-- reads: interrupted, cancelled, closed under them; nothing written later
-- is lost
f = spawn(function() outcome('read interrupted:', s.read_some, s, byte_span.new(8)) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() outcome('read cancelled:', s.read_some, s, byte_span.new(8)) end)
this_fiber.yield()
s:cancel()
f:join()
c:write_some('kept')
local buf = byte_span.new(8)
local n = s:read_some(buf)
print('data after cancelled reads:', tostring(buf:slice(1, n)))
f = spawn(function() outcome('read closed under it:', s.read_some, s, byte_span.new(8)) end)
this_fiber.yield()
s:close()
f:join()
print('socket closed:', s.is_open)

-- closing the acceptor under accept
f = spawn(function() outcome('accept closed under it:', acc.accept, acc) end)
this_fiber.yield()
acc:close()
f:join()

-- udp receive_from: interrupted and closed under it
local u = ip.udp.socket.new()
u:open('v6')
u:bind('::1', 0)
f = spawn(function() outcome('receive_from interrupted:', u.receive_from, u, byte_span.new(8)) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() outcome('receive_from closed under it:', u.receive_from, u, byte_span.new(8)) end)
this_fiber.yield()
u:close()
f:join()

-- an interrupted fiber whose accept already completed gets the connection
-- (never interrupted in the middle)
local acc2 = ip.tcp.acceptor.new()
acc2:open('v4')
acc2:bind('127.0.0.1', 0)
acc2:listen()
local got
f = spawn(function() got = acc2:accept() end)
this_fiber.yield()
local c2 = ip.tcp.socket.new()
c2:connect('127.0.0.1', acc2.local_port)
f:interrupt()
f:join()
print('accept completed before the interrupt:', got and got.is_open, f.interruption_caught)

-- connect pending on a full accept queue (backlog 0: one connection
-- waits, later SYNs are dropped): interrupted, then closed under it
local full = ip.tcp.acceptor.new()
full:open('v4')
full:bind('127.0.0.1', 0)
full:listen(0)
local queued = {}
for i = 1, 1 do
  queued[i] = ip.tcp.socket.new()
  queued[i]:connect('127.0.0.1', full.local_port)
end
local s3 = ip.tcp.socket.new()
f = spawn(function() outcome('connect interrupted:', s3.connect, s3, '127.0.0.1', full.local_port) end)
this_fiber.yield()
f:interrupt()
f:join()
local s4 = ip.tcp.socket.new()
f = spawn(function() outcome('connect closed under it:', s4.connect, s4, '127.0.0.1', full.local_port) end)
this_fiber.yield()
s4:close()
f:join()
