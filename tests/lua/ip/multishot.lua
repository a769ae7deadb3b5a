-- the acceptor's multishot accept: connections that arrive while nobody
-- waits are queued and taken in order; concurrent accepts each get one;
-- close() drops (closes) queued ones; release() needs cancel() first; a VM
-- whose acceptor is still armed can end
local ip = require 'ip'
local time = require 'time'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local acc = ip.tcp.acceptor.new()
acc:open('v4')
acc:bind('127.0.0.1', 0)
acc:listen()
local port = acc.local_port

-- arm it with a first accept, then connect 5 clients while nobody waits
local f = spawn(function() return acc:accept() end)
local first = ip.tcp.socket.new()
first:connect('127.0.0.1', port)
local s0 = f:join()
local clients = {}
for i = 1, 5 do
  clients[i] = ip.tcp.socket.new()
  clients[i]:connect('127.0.0.1', port)
  clients[i]:write_some(tostring(i))
end
local order = {}
local buf = byte_span.new(4)
for i = 1, 5 do
  local s = acc:accept()
  order[i] = tostring(buf:slice(1, s:read_some(buf)))
  s:close()
end
print('queued connections in order:', table.concat(order, ' '))

-- several fibers accept at once: each gets one connection
local fibers = {}
for i = 1, 3 do
  fibers[i] = spawn(function()
    local s = acc:accept()
    return tostring(buf:slice(1, s:read_some(byte_span.new(4)) > 0 and 1 or 0))
  end)
end
this_fiber.yield()
for i = 1, 3 do
  local c = ip.tcp.socket.new()
  c:connect('127.0.0.1', port)
  c:write_some('x')
  clients[#clients + 1] = c
end
local got = 0
for i = 1, 3 do fibers[i]:join() got = got + 1 end
print('concurrent accepts served:', got)

-- interrupting the only waiter disarms; the next accept re-arms
f = spawn(function() return try(acc.accept, acc) end)
this_fiber.yield()
f:interrupt()
print('interrupted:', f:join())
f = spawn(function() return acc:accept() end)
local late = ip.tcp.socket.new()
late:connect('127.0.0.1', port)
print('re-armed:', f:join().is_open)

-- release while armed: EBUSY; once cancel() completed (a turn of the
-- ring: sleep(0)) it works
print('release armed:', try(acc.release, acc))
acc:cancel()
time.sleep(0)
local fd = acc:release()
print('released after cancel:', getmetatable(fd), acc.is_open)
acc = ip.tcp.acceptor.new(fd)

-- close() with queued connections closes them: their clients see EOF
f = spawn(function() return acc:accept() end)
local c1 = ip.tcp.socket.new()
c1:connect('127.0.0.1', port)
f:join()
local queued = ip.tcp.socket.new()
queued:connect('127.0.0.1', port)
this_fiber.yield()
acc:close()
print('queued connection closed:', try(queued.read_some, queued, buf))
print('accept closed:', try(acc.accept, acc))

-- a fresh acceptor left armed with nobody waiting does not keep the VM
-- alive (the script ends here)
local idle = ip.tcp.acceptor.new()
idle:open('v4')
idle:bind('127.0.0.1', 0)
idle:listen()
f = spawn(function() return idle:accept() end)
local c2 = ip.tcp.socket.new()
c2:connect('127.0.0.1', idle.local_port)
f:join()

-- accept is an interruption point even with a connection queued
local acc2 = ip.tcp.acceptor.new()
acc2:open('v4')
acc2:bind('127.0.0.1', 0)
acc2:listen()
f = spawn(function() return acc2:accept() end)
local c3 = ip.tcp.socket.new()
c3:connect('127.0.0.1', acc2.local_port)
f:join()
local c4 = ip.tcp.socket.new()
c4:connect('127.0.0.1', acc2.local_port)
this_fiber.yield() -- (the kernel queues c4's connection meanwhile)
f = spawn(function() return acc2:accept() end)
f:interrupt() -- before it starts: it runs to its first interruption point
f:join()
print('interrupted before taking a queued one:', f.interruption_caught)
print('the queued one is still there:', acc2:accept().is_open)
print('end of script')
