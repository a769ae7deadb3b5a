-- stream.write_all / write_at_least / read_all / read_at_least over pipes
-- and files, and their errors
local stream = require 'stream'
local pipe = require 'pipe'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end

local r, w = pipe.pair()
-- a writer bigger than the pipe's buffer: write_all loops over write_some
local big = string.rep('0123456789abcdef', 16384) -- 256 KiB
local writer = spawn(function() return stream.write_all(w, big) end)
local buf = byte_span.new(#big)
print('read_all:', stream.read_all(r, buf), tostring(buf) == big)
print('write_all returned:', writer:join())

print('write_all span:', stream.write_all(w, byte_span.append('abcdef')))
local small = byte_span.new(10)
print('read_at_least 3:', stream.read_at_least(r, small, 3), tostring(small:slice(1, 6)))
print('write_at_least:', stream.write_at_least(w, 'xyz', 2))
print('read_at_least 0:', stream.read_at_least(r, small, 0))
print('read_all 3:', stream.read_all(r, small:slice(1, 3)), tostring(small:slice(1, 3)))
print('write_all empty:', stream.write_all(w, ''))

w:write_some('tail')
w:close()
local rest = byte_span.new(10)
print('read_all at EOF:', try(stream.read_all, r, rest))
print('read_at_least at EOF:', try(stream.read_at_least, r, rest, 1))

print('-- errors')
local r2, w2 = pipe.pair()
print('read_all string buffer:', try(stream.read_all, r2, 'x'))
print('read_at_least n > #buf:', try(stream.read_at_least, r2, byte_span.new(2), 3))
print('read_at_least negative:', try(stream.read_at_least, r2, byte_span.new(2), -1))
print('read_at_least fractional:', try(stream.read_at_least, r2, byte_span.new(2), 0.5))
print('write_at_least n > #buf:', try(stream.write_at_least, w2, 'ab', 3))
print('write_all number:', try(stream.write_all, w2, 42))
print('not a stream:', try(stream.write_all, {}, 'x'))
print('number as stream:', try(stream.read_all, 42, byte_span.new(1)))
print('read from a write stream:', try(stream.read_all, w2, byte_span.new(1)))
r2:close()
print('broken pipe:', try(stream.write_all, w2, 'x'))
w2:close()
print('closed:', try(stream.write_all, w2, 'x'))

-- interrupted read_all: what arrived stays in the buffer, nothing more
local r3, w3 = pipe.pair()
local b3 = byte_span.new(8)
local f = spawn(function() return stream.read_all(r3, b3) end)
w3:write_some('half')
this_fiber.yield()
this_fiber.yield()
f:interrupt()
print('interrupted read_all joined:', pcall(f.join, f))
print('arrived before:', tostring(b3:slice(1, 4)))
