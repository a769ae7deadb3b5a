-- The fast path of unix stream sockets' read_some/write_some
-- (src/modules/fast_io.rs): after the first op on a buffer, later ones on
-- it go through a cached handle; pending reads there are interrupted and
-- closed like any op, data keeps its order whichever path carried it, and
-- release() hands over a descriptor that still works.
local unix = require 'unix'
local function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end
local a, b = unix.stream_socket.pair()
local buf = byte_span.new(16)
local w = byte_span.new(3)
for i = 1, 3 do w[i] = 64 + i end
a:write_some(w)
print('first read', tostring(buf:slice(1, b:read_some(buf))))

local f = spawn(function() outcome('read interrupted:', b.read_some, b, buf) end)
this_fiber.yield()
f:interrupt()
f:join()

a:write_some(w)
a:write_some('-s-')
a:write_some(w:slice(2, 3))
a:write_some(w)
local got, total = {}, 0
while total < 11 do
  local n = b:read_some(buf)
  total = total + n
  got[#got + 1] = tostring(buf:slice(1, n))
end
print('read', table.concat(got), total)

-- release(): the descriptor goes on working in a new object
local c = unix.stream_socket.new(b:release())
outcome('read after release:', b.read_some, b, buf)
a:write_some(w)
print('new object reads', tostring(buf:slice(1, c:read_some(buf))))

-- closed under a pending read on the cached buffer; the peer then sees
-- end of file, on its own cached buffer too
f = spawn(function() outcome('read closed under:', c.read_some, c, buf) end)
this_fiber.yield()
c:close()
f:join()
local rb = byte_span.new(4)
outcome('peer reads:', a.read_some, a, rb)
outcome('again (cached):', a.read_some, a, rb)
a:close()
