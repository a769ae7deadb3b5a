-- The fast path of read_some/write_some (src/modules/fast_io.rs): the
-- second and later chunk ops on one buffer go through a cached handle;
-- another buffer, a string or a fake byte_span take the primitive. Either
-- way the data and the errors are the same, and close()/release() leave no
-- descriptor behind.
local file = require 'file'
local fs = require 'filesystem'
local F = file.open_flag
local dir = fs.temp_directory_path() / ('luring-fast-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local a, b = dir / 'a', dir / 'b'
-- Open fds, without eventfds (open_fds.lua).
local fds = require('./open_fds').count
local function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end
local before = fds()

-- Writes: one buffer again and again (cached), a second buffer and a
-- slice (each a miss, then cached for writes), a string (never cached).
local out = file.stream.new()
out:open(a, bit.bor(F.write_only, F.create, F.truncate))
local w1, w2 = byte_span.new(4), byte_span.new(3)
for i = 1, 4 do w1[i] = 64 + i end -- ABCD
for i = 1, 3 do w2[i] = 96 + i end -- abc
local n = 0
for _ = 1, 3 do n = n + out:write_some(w1) end
n = n + out:write_some(w2) + out:write_some(w1) + out:write_some(w1:slice(2, 3))
n = n + out:write_some('xyz') + out:write_some(w2)
print('written', n)
out:close()

-- Reads: the same buffer (cached), then others in turn; what each read
-- returns is what is in the file at that place.
local s = file.stream.new()
s:open(a, F.read_only)
local r1, r2 = byte_span.new(4), byte_span.new(2)
local parts = {}
local function take(buf)
  local got = s:read_some(buf)
  parts[#parts + 1] = tostring(buf:slice(1, got))
end
take(r1) take(r1) take(r2) take(r1) take(r2) take(r2:slice(1, 1)) take(r1) take(r1)
take(r1)
print('read', table.concat(parts, '|'))
outcome('at the end (cached buffer):', s.read_some, s, r1)
outcome('at the end (another buffer):', s.read_some, s, byte_span.new(1))

-- Arguments the fast path refuses get the primitive's errors.
local fake = newproxy(true)
getmetatable(fake).__metatable = 'byte_span'
outcome('read into a fake byte_span:', s.read_some, s, fake)
outcome('read into a string:', s.read_some, s, 'abc')
s:seek(0, 'set')
take(r1)
print('after the refusals', parts[#parts])

-- close(), then the same object opened on another file: reads come from
-- that file, not the old descriptor; a closed object is EBADF.
s:close()
outcome('read after close (cached buffer):', s.read_some, s, r1)
local wb = file.stream.new()
wb:open(b, bit.bor(F.write_only, F.create))
wb:write_some('0123456789')
wb:close()
s:open(b, F.read_only)
take(r1)
print('reopened on b', parts[#parts])

-- release(): the descriptor goes to the caller (still open, same file
-- position), the object is closed.
local fd = s:release()
outcome('read after release:', s.read_some, s, r1)
local s2 = file.stream.new(fd)
local got = s2:read_some(r1)
print('released descriptor reads on', tostring(r1:slice(1, got)))
s2:close()

-- Writes on a read-only stream and reads on a write-only one: the
-- kernel's EBADF, from the cached path as from the first call.
local ro = file.stream.new()
ro:open(a, F.read_only)
outcome('write on read-only:', ro.write_some, ro, w1)
outcome('again (cached):', ro.write_some, ro, w1)
ro:close()

-- Many objects, each with a cached handle: closed ones (still
-- referenced) and released ones keep no descriptor open, dropped ones
-- none once collected.
local keep = {}
for i = 1, 60 do
  local o = file.stream.new()
  o:open(a, F.read_only)
  o:read_some(r1)
  o:read_some(r1)
  if i % 3 == 0 then o:close() elseif i % 3 == 1 then o:release():close() end
  if i % 3 ~= 2 then keep[#keep + 1] = o end
end
collectgarbage() collectgarbage()
print('fds left over', fds() - before, 'objects kept', #keep)

fs.remove_all(dir)
