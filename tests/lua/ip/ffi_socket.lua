-- TCP receives and sends through LuaJIT's FFI (lua/io_object.lua
-- IO.run_fast, src/modules/fast_io.rs socket_op_ffi): once a socket's
-- buffer is bound (its first op), later read_some/write_some/receive/send
-- on it submit through an FFI function pointer. Several fibers taking
-- turns, interruption, cancel, close and release under a pending op, a
-- peer that closed, user coroutines, sort comparators, finalizers and a
-- stopped collector keep the semantics of the other paths; user code sees
-- nothing of the ffi library.
local ip = require 'ip'
local E = { EPIPE = 32, ECONNRESET = 104 }

local L = require './loopback' -- outcome, listener, tcp_pair
local outcome = L.outcome
local acc = L.listener()
local function pair() return L.tcp_pair(acc) end

-- Three echo connections served by three fibers taking turns (each has
-- its own coroutine: the per-thread pointer cache switches between them),
-- each message checked byte for byte.
local served = {}
local function echo(sock)
  local buf = byte_span.new(64)
  local view, len = nil, -1
  while true do
    local ok, n = pcall(sock.read_some, sock, buf)
    if not ok then return end
    if n ~= len then view, len = buf:slice(1, n), n end
    local sent = sock:write_some(view)
    while sent < n do sent = sent + sock:write_some(buf:slice(sent + 1, n)) end
    served[sock] = (served[sock] or 0) + 1
  end
end
local clients, fibers = {}, {}
for i = 1, 3 do
  local c, s = pair()
  clients[i] = c
  fibers[i] = spawn(function() echo(s) s:close() end)
end
local bad = 0
local drivers = {}
for i = 1, 3 do
  drivers[i] = spawn(function()
    local c = clients[i]
    local out, back = byte_span.new(8), byte_span.new(8)
    for k = 1, 50 do
      local msg = string.format('%d:%06d', i, k)
      for j = 1, 8 do out[j] = msg:byte(j) end
      local sent = 0
      while sent < 8 do sent = sent + c:write_some(out:slice(sent + 1, 8)) end
      local got = 0
      while got < 8 do got = got + c:read_some(back:slice(got + 1, 8)) end
      if tostring(back) ~= msg then bad = bad + 1 end
    end
  end)
end
for i = 1, 3 do drivers[i]:join() end
for i = 1, 3 do clients[i]:close() end
for i = 1, 3 do fibers[i]:join() end
local total = 0
for _, n in pairs(served) do total = total + n end
print('three fibers echoed', total, 'mismatches', bad)

-- A pending receive on the bound buffer: interrupted, cancelled, released
-- (EBUSY) and closed under; bytes sent after an interruption are not lost.
local c, s = pair()
local buf = byte_span.new(16)
c:write_some('warm')
print('first read', tostring(buf:slice(1, s:read_some(buf))))
c:write_some('more')
print('second read', tostring(buf:slice(1, s:read_some(buf))))
local f = spawn(function() outcome('read interrupted:', s.read_some, s, buf) end)
this_fiber.yield()
f:interrupt()
f:join()
c:write_some('kept')
print('after the interruption', tostring(buf:slice(1, s:read_some(buf))))
f = spawn(function() outcome('receive cancelled:', s.receive, s, buf) end)
this_fiber.yield()
outcome('release while reading:', s.release, s)
s:cancel()
f:join()

-- In a user coroutine (the fiber's own thread is not running: the FFI
-- path refuses and fast_op does the op), with the collector stopped, and
-- in a sort comparator (refused before anything is submitted: the bytes
-- stay for the next read).
c:write_some('co')
print('in a coroutine', coroutine.wrap(function()
  return tostring(buf:slice(1, s:read_some(buf)))
end)())
collectgarbage('stop')
c:write_some('gc')
print('collector stopped', tostring(buf:slice(1, s:read_some(buf))), s:write_some(buf:slice(1, 2)))
collectgarbage('restart')
print('echoed back', tostring(buf:slice(1, c:read_some(buf))))
local ok, e = pcall(table.sort, { 1, 2 }, function() s:read_some(buf) return false end)
print('in a comparator:', ok, (tostring(e):gsub(':.*', '')))
local in_gc
do
  local p = newproxy(true)
  getmetatable(p).__gc = function()
    local ok2, e2 = pcall(s.write_some, s, buf)
    in_gc = tostring(ok2) .. ' ' .. tostring(e2):gsub(':.*', '')
  end
end
collectgarbage() collectgarbage()
print('in a finalizer:', in_gc)
c:write_some('after')
print('nothing was taken', tostring(buf:slice(1, s:read_some(buf))))

-- A slice out of range is refused by byte_span as before.
outcome('slice out of range:', buf.slice, buf, 1, 17)

-- The peer closes: reads on the bound buffer are end of file; sends on
-- the bound buffer end with EPIPE or ECONNRESET (whichever the kernel
-- reports first), raised as an error.
c:close()
outcome('read after the peer closed:', s.read_some, s, buf)
outcome('again:', s.read_some, s, buf)
local w = byte_span.new(8)
local send_error
for _ = 1, 100 do
  local ok3, e3 = pcall(s.write_some, s, w)
  if not ok3 then send_error = e3 break end
end
print('send to a closed peer raised:', send_error ~= nil and (send_error.code == E.EPIPE or send_error.code == E.ECONNRESET))

-- Fibers sharing one socket: a pending read holds the object's single-op
-- slot, so sends submitted meanwhile (not inline: other fibers are ready)
-- wait through the tracked path; every op delivers, release() is EBUSY
-- while the read waits, and once all are done nothing stays tracked
-- (release() then succeeds).
local c3, s3 = pair()
local rb, wb = byte_span.new(8), byte_span.new(3)
for i = 1, 3 do wb[i] = 96 + i end
c3:write_some('z')
s3:read_some(rb)
s3:write_some(wb)
c3:read_some(rb)
local reader = spawn(function()
  local n = s3:read_some(rb)
  return tostring(rb:slice(1, n))
end)
local writers = {}
for i = 1, 3 do writers[i] = spawn(function() return s3:write_some(wb) end) end
this_fiber.yield()
outcome('release with a read pending:', s3.release, s3)
local sent3 = 0
for i = 1, 3 do sent3 = sent3 + writers[i]:join() end
local back3 = byte_span.new(16)
local got3 = 0
while got3 < sent3 do got3 = got3 + c3:read_some(back3:slice(got3 + 1, 16)) end
print('three sends', sent3, tostring(back3:slice(1, got3)))
c3:write_some('q')
print('the read', reader:join())
local fd3 = s3:release()
print('released after', type(fd3))
c3:close()

-- Closed under a pending receive on the bound buffer; then EBADF.
local c2, s2 = pair()
c2:write_some('x')
s2:read_some(buf)
s2:write_some(w)
f = spawn(function() outcome('read closed under:', s2.read_some, s2, buf) end)
this_fiber.yield()
s2:close()
f:join()
outcome('read after close:', s2.read_some, s2, buf)
outcome('write after close:', s2.write_some, s2, w)
c2:close()
s:close()
acc:close()

-- Nothing of the ffi library reached user code.
print('globals', ffi, jit, rawget(_G, 'ffi'))
outcome('require ffi:', require, 'ffi')
for k, v in pairs(_G) do
  if type(v) == 'cdata' then print('cdata global', k) end
end
