-- Direct reads (src/executor/direct.rs): file.stream's read_some of a
-- regular file's cached data may skip the ring. The results are those of
-- the ring path: short reads at the end, end of file (not sticky: data
-- appended later is read), a file cut between reads, the stream position;
-- a FIFO or a directory opened as a stream keeps the ring path (a read
-- waits for the writer; EISDIR), as does a file system without
-- RWF_NOWAIT (procfs); and a fiber reading cached data in a loop
-- still lets a timer in another fiber fire.
local file = require 'file'
local fs = require 'filesystem'
local time = require 'time'
local F = file.open_flag
local dir = fs.temp_directory_path() / ('luring-direct-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local path = dir / 'data'
local function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), e.code, tostring(e))
end

-- 100,000 bytes of a pattern (just written: cached).
local w = file.stream.new()
w:open(path, bit.bor(F.write_only, F.create, F.truncate))
local pattern = byte_span.new(100000)
for i = 1, #pattern do pattern[i] = i % 251 end
local written = 0
while written < #pattern do written = written + w:write_some(pattern:slice(written + 1)) end
w:close()

-- Reads in 64 KiB: a full chunk, the short rest, then end of file; the data
-- is the file's, and the position follows.
local s = file.stream.new()
s:open(path, F.read_only)
local buf = byte_span.new(65536)
local n1 = s:read_some(buf)
local same = true
for i = 1, n1 do if buf[i] ~= i % 251 then same = false end end
print('first read', n1, 'data matches', same, 'position', s:seek(0, 'cur'))
local n2 = s:read_some(buf)
same = true
for i = 1, n2 do if buf[i] ~= (n1 + i) % 251 then same = false end end
print('short read at the end', n2, 'data matches', same, 'position', s:seek(0, 'cur'))
outcome('at the end:', s.read_some, s, buf)
outcome('again at the end:', s.read_some, s, buf)

-- End of file is not sticky: bytes appended later are read.
local a = file.stream.new()
a:open(path, bit.bor(F.write_only, F.append))
a:write_some('tail')
print('after an append', s:read_some(buf), tostring(buf:slice(1, 4)))
outcome('at the new end:', s.read_some, s, buf)

-- Back to the start, then the file is cut between reads: first to a size
-- beyond the position (a short read up to the new end), then below it (end
-- of file at once).
s:seek(0, 'set')
print('read from the start', s:read_some(buf))
a:resize(70000)
print('cut to 70000, then read', s:read_some(buf), 'position', s:seek(0, 'cur'))
outcome('at the end of the cut file:', s.read_some, s, buf)
s:seek(0, 'set')
print('read from the start', s:read_some(buf))
a:resize(1000)
outcome('cut below the position, then read:', s.read_some, s, buf)
a:close()

-- An empty buffer reads nothing (no end-of-file error), like the ring path.
print('empty buffer', s:read_some(byte_span.new(0)))

-- Inside a callback called from C the fiber cannot suspend, so read_some
-- refuses before reading anything, even data a direct read would get
-- without suspending (the cached buffer and a new one alike).
s:seek(0, 'set')
for _, b in ipairs{ buf, byte_span.new(8) } do
  local ok, e = pcall(table.sort, { 1, 2 }, function() s:read_some(b) return false end)
  print('read_some in a sort comparator:', ok, (tostring(e):gsub(':.*', '')), 'position', s:seek(0, 'cur'))
end
s:close()

-- A directory opened as a stream: the read is the ring's, EISDIR.
local d = file.stream.new()
d:open(dir, F.read_only)
outcome('read of a directory:', d.read_some, d, buf)
outcome('again:', d.read_some, d, buf)
d:close()

-- A file system without RWF_NOWAIT (procfs): a regular file whose reads
-- come from the ring, the first after the direct read said so.
local proc = file.stream.new()
proc:open('/proc/self/status', F.read_only)
local five = byte_span.new(5)
local first = tostring(five:slice(1, proc:read_some(five)))
local more = proc:read_some(five) + proc:read_some(five)
print('/proc/self/status starts with', first, 'then', more, 'bytes more')
proc:close()

-- A FIFO keeps the ring path: the read waits until the writer wrote.
local fifo = dir / 'fifo'
fs.mkfifo(fifo, fs.mode(6, 0, 0))
local r = file.stream.new()
r:open(fifo, F.read_write)
local got
local reader = spawn(function()
  got = r:read_some(buf)
  got = got .. ' ' .. tostring(buf:slice(1, got))
end)
this_fiber.yield()
print('FIFO reader still waiting', got == nil)
local fw = file.stream.new()
fw:open(fifo, F.write_only)
fw:write_some('hello')
reader:join()
print('FIFO read', got)
fw:close()
r:close()

-- Fairness: a fiber reading 1 byte at a time from cached data (every read
-- can be direct) still lets a 1 ms timer in another fiber fire, three
-- times: the VM turns its ring between bounded runs of such reads.
local big = file.stream.new()
big:open(path, F.read_only)
local one = byte_span.new(1)
local ticks = 0
local ticker = spawn(function()
  for _ = 1, 3 do time.sleep(0.001) ticks = ticks + 1 end
end)
local reads = 0
while ticks < 3 and reads < 5000000 do
  big:read_some(one)
  reads = reads + 1
  -- Never at the end (whose read would go to the ring and turn it).
  if reads % 1000 == 0 then big:seek(0, 'set') end
end
ticker:join()
print('the timer fired 3 times while reading', ticks == 3, 'within the cap', reads < 5000000)
big:close()

fs.remove_all(dir)
