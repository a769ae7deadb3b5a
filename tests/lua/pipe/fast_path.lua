-- The fast path of pipe read_some/write_some (src/modules/fast_io.rs):
-- after the first op on a buffer, later ones on it go through a cached
-- handle. Pending reads there are interrupted, cancelled and closed like
-- any op, release() is EBUSY meanwhile, and nothing written is lost or
-- reordered whichever path carried it.
local pipe = require 'pipe'
local function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end
local r, w = pipe.pair()
local buf = byte_span.new(16)
w:write_some('warm')
print('first read', tostring(buf:slice(1, r:read_some(buf))))

-- pending reads on the cached buffer
local f = spawn(function() outcome('read interrupted:', r.read_some, r, buf) end)
this_fiber.yield()
f:interrupt()
f:join()
f = spawn(function() outcome('read cancelled:', r.read_some, r, buf) end)
this_fiber.yield()
outcome('release while reading:', r.release, r)
r:cancel()
f:join()

-- writes: a span (cached after the first), a slice, a string, in order
local s = byte_span.new(3)
for i = 1, 3 do s[i] = 64 + i end
w:write_some(s)
w:write_some(s)
w:write_some(s:slice(2, 3))
w:write_some('-s-')
w:write_some(s)
local got, total = {}, 0
while total < 14 do
  local n = r:read_some(buf)
  total = total + n
  got[#got + 1] = tostring(buf:slice(1, n))
end
print('read', table.concat(got), total)

-- the writer closed: end of file, each time, on the cached buffer
w:close()
outcome('read after the writer closed:', r.read_some, r, buf)
outcome('again (cached):', r.read_some, r, buf)
outcome('write after close:', w.write_some, w, s)

-- a reader closed under a pending read on the cached buffer; the writer
-- then gets EPIPE from the fast path as from the first call
local r2, w2 = pipe.pair()
w2:write_some('x')
r2:read_some(buf)
f = spawn(function() outcome('read closed under:', r2.read_some, r2, buf) end)
this_fiber.yield()
r2:close()
f:join()
outcome('read after close:', r2.read_some, r2, buf)
outcome('write, no reader:', w2.write_some, w2, s)
outcome('again (cached):', w2.write_some, w2, s)
w2:close()
