-- Ops that complete during their own submission (reads of cached data,
-- buffered writes) may hand their result straight back to the fiber
-- (lua/io_object.lua IO.run_op_inline): such a fiber still lets timers and
-- other fibers run, interruption never loses data, and errors are raised
-- as on the suspending path.
local file = require 'file'
local fs = require 'filesystem'
local time = require 'time'
local F = file.open_flag
local dir = fs.temp_directory_path() / ('luring-inline-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local path = dir / 'data'

-- Writes in 4 KiB chunks (each completes inline) until a 1 ms timer in
-- another fiber fired, and at least 1 MiB; then the file is cut to 1 MiB.
local out = file.stream.new()
out:open(path, bit.bor(F.write_only, F.create))
local chunk = byte_span.new(4096)
for i = 1, #chunk do chunk[i] = i % 251 end
local ticked = false
local ticker = spawn(function() time.sleep(0.001) ticked = true end)
local written = 0
while written < 1048576 or not ticked do
  written = written + out:write_some(chunk)
end
ticker:join()
out:resize(1048576)
print('size', out:size(), 'written a multiple of 4 KiB', written % 4096 == 0)
out:close()

-- A reader of random_access looping on one offset (every read completes
-- inline) stops once a 1 ms timer in another fiber fired: the VM keeps
-- turning the ring between inline completions.
local ra = file.random_access.new()
ra:open(path, F.read_only)
local buf = byte_span.new(4096)
local done = false
local timer = spawn(function() time.sleep(0.001) done = true end)
local reads = 0
while not done do
  reads = reads + 1
  assert(ra:read_some_at(0, buf) == 4096)
end
timer:join()
print('reads until the timer fired > 0', reads > 0, 'data', buf[1], buf[4096])
ra:close()

-- Interruption: a reader is interrupted by a fiber that slept meanwhile;
-- whatever it read before it saw the interruption is exactly what the file
-- position advanced by (no completed read lost, none half-delivered).
for _, size in ipairs{ 4096, 65536 } do
  local s = file.stream.new()
  s:open(path, F.read_only)
  local b = byte_span.new(size)
  local total = 0
  local reader = spawn(function()
    while true do
      total = total + s:read_some(b)
      if total % 1048576 == 0 then s:seek(0, 'set') end
    end
  end)
  spawn(function()
    time.sleep(0.002)
    reader:interrupt()
  end):join()
  reader:join()
  local pos = s:seek(0, 'cur')
  print('interrupted reader (' .. size .. '):', reader.interruption_caught,
    'position matches', pos == total % 1048576, 'read some', total > 0)
  s:close()
end

-- Errors come back from the inline path like from the suspending one.
local wo = file.stream.new()
wo:open(path, F.write_only)
local ok, e = pcall(wo.read_some, wo, buf)
print('read of a write-only stream:', ok, tostring(e.category), tostring(e))
ok, e = pcall(wo.read_some, wo, buf)
print('again:', ok, tostring(e))
wo:close()
local ro = file.stream.new()
ro:open(path, F.read_only)
ro:seek(0, 'end')
ok, e = pcall(ro.read_some, ro, buf)
print('read at the end:', ok, tostring(e.category), e.code)
ro:close()

fs.remove_all(dir)
