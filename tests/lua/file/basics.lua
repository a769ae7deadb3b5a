-- file.stream and file.random_access: open flags, reads and writes at the
-- position and at offsets, seek, size, resize, the *_at helpers
local file = require 'file'
local fs = require 'filesystem'
local F = file.open_flag
local dir = fs.temp_directory_path() / ('luring-file-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local p = dir / 'data'

local names = {}
for k in pairs(F) do names[#names + 1] = k end
table.sort(names)
print('open_flag:', table.concat(names, ' '))

local w = file.stream.new()
print('new:', getmetatable(w), w.is_open)
w:open(p, bit.bor(F.write_only, F.create, F.exclusive))
print('opened:', w.is_open)
print('write_some:', w:write_some('hello '), w:write_some(byte_span.append('world')))
print('size:', w:size())
print('seek cur:', w:seek(0, 'cur'), 'seek set:', w:seek(6), 'seek end:', w:seek(-2, 'end'))
w:write_some('LD')
w:resize(20)
print('resized:', w:size(), fs.file_size(p))
w:resize(11)
w:close()
print('closed:', w.is_open)

local r = file.stream.new()
r:open(tostring(p), F.read_only)
local buf = byte_span.new(4)
local got = {}
while true do
  local ok, n = pcall(r.read_some, r, buf)
  if not ok then print('end:', tostring(n)) break end
  got[#got + 1] = tostring(buf:slice(1, n))
end
print('read:', table.concat(got, '|'))
print('seek back:', r:seek(0, 'set'), r:read_some(buf), tostring(buf))
r:close()

-- append and truncate
local a = file.stream.new()
a:open(p, bit.bor(F.write_only, F.append))
a:seek(0)
a:write_some('!')
a:close()
local t = file.random_access.new()
t:open(p, F.read_only)
local all = byte_span.new(t:size())
print('appended:', file.read_all_at(t, 0, all), tostring(all))
t:close()
local tr = file.stream.new()
tr:open(p, bit.bor(F.read_write, F.truncate))
print('truncated:', tr:size())
tr:close()

-- random access
local ra = file.random_access.new()
print('ra new:', getmetatable(ra))
ra:open(p, bit.bor(F.read_write, F.create))
print('write_some_at:', ra:write_some_at(4, 'abcd'))
print('size with hole:', ra:size())
local b = byte_span.new(8)
print('read_some_at:', ra:read_some_at(0, b), b[1], b[4], tostring(b:slice(5, 8)))
print('write_all_at:', file.write_all_at(ra, 8, 'EFGH'), 'write_at_least_at:', file.write_at_least_at(ra, 12, byte_span.append('IJ'), 1))
local c = byte_span.new(6)
print('read_at_least_at:', file.read_at_least_at(ra, 8, c, 2), tostring(c))
local big = byte_span.new(100)
local ok, e = pcall(file.read_all_at, ra, 0, big)
print('read_all_at past the end:', ok, tostring(e))
ok, e = pcall(ra.read_some_at, ra, 1000, b)
print('read_some_at past the end:', ok, tostring(e))
print('empty buffer read:', ra:read_some_at(0, byte_span.new(0)))
ra:resize(0)
print('resize 0:', ra:size())

-- a released file keeps working through another object
local fd = ra:release()
print('released:', ra.is_open, getmetatable(fd))
local again = file.random_access.new(fd)
print('adopted size:', again:size())
again:close()

fs.remove_all(dir)
print('cleaned:', fs.exists(dir))
