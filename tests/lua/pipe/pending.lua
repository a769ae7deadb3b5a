-- ops in flight: interruption, cancel(), close(), release() -> EBUSY
local pipe = require 'pipe'
local function reader(r, label)
  return spawn(function()
    local buf = byte_span.new(8)
    local ok, e = pcall(r.read_some, r, buf)
    if ok then print(label, 'read', tostring(buf:slice(1, e))) return end
    print(label, tostring(e.category), e.code, tostring(e))
  end)
end

-- interruption cancels the read; nothing written afterwards is lost
local r, w = pipe.pair()
local f = reader(r, 'interrupted:')
this_fiber.yield()
f:interrupt()
f:join()
w:write_some('kept')
f = reader(r, 'next reader:')
f:join()

-- release with a read pending is EBUSY and changes nothing
f = reader(r, 'after EBUSY:')
this_fiber.yield()
local ok, e = pcall(r.release, r)
print('release pending:', ok, tostring(e), r.is_open)
-- cancel aborts it with operation_aborted
r:cancel()
f:join()
local fd = r:release()
print('release after:', getmetatable(fd), r.is_open)

-- close with a read pending aborts it too
local r2 = pipe.read_stream.new(fd)
f = reader(r2, 'closed under:')
this_fiber.yield()
r2:close()
f:join()
print('closed:', r2.is_open)

