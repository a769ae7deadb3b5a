-- ops in flight on files (a FIFO keeps reads waiting): interruption,
-- cancel(), close(), release() -> EBUSY, and no fd left behind
local file = require 'file'
local fs = require 'filesystem'
local F = file.open_flag
local dir = fs.temp_directory_path() / ('luring-file-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local fifo = dir / 'fifo'
fs.mkfifo(fifo, fs.mode(6, 0, 0))
-- Open fds, without eventfds (open_fds.lua).
local fds = require('./open_fds').count
local before = fds()
local function report(label, ok, e)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end

-- an open in flight (a ring openat; the kernel's never waits for a FIFO's
-- other end, so it is in flight only briefly): close() or cancel() under
-- it leaves the object closed, whether the kernel cancelled the open or had
-- already done it (the new fd is closed then)
for _, how in ipairs{ 'close', 'cancel' } do
  local o = file.stream.new()
  local f = spawn(function()
    report(how .. ' under open:', pcall(o.open, o, dir / ('new-' .. how), bit.bor(F.write_only, F.create)))
  end)
  this_fiber.yield()
  print('release while opening:', pcall(o.release, o))
  o[how](o)
  f:join()
  print('open after ' .. how .. ':', o.is_open)
end

-- reads in flight
local r = file.stream.new()
r:open(fifo, F.read_write)
local function reader(label)
  return spawn(function()
    local buf = byte_span.new(8)
    local ok, n = pcall(r.read_some, r, buf)
    if ok then print(label, 'read', tostring(buf:slice(1, n))) return end
    report(label, ok, n)
  end)
end
f = reader('interrupted read:')
this_fiber.yield()
f:interrupt()
f:join()
f = reader('cancelled read:')
this_fiber.yield()
print('release while reading:', pcall(r.release, r))
r:cancel()
f:join()
local w = file.stream.new()
w:open(fifo, F.write_only)
w:write_some('kept')
reader('next read:'):join()
f = reader('closed under:')
this_fiber.yield()
r:close()
f:join()
w:close()

-- writes in flight: a FIFO whose buffer is full
local wr = file.stream.new()
wr:open(fifo, F.read_write)
local chunk = string.rep('x', 65536)
local filled = 0
local filler = spawn(function()
  while true do filled = filled + wr:write_some(chunk) end
end)
-- the filler is stuck once the pipe buffer is full (its write pending)
local last = -1
while last ~= filled do last = filled this_fiber.yield() this_fiber.yield() end
filler:interrupt()
print('interrupted write:', pcall(filler.join, filler), filled > 0)
local function writer(label)
  return spawn(function() report(label, pcall(wr.write_some, wr, chunk)) end)
end
f = writer('cancelled write:')
this_fiber.yield()
print('release while writing:', pcall(wr.release, wr))
wr:cancel()
f:join()
f = writer('closed under write:')
this_fiber.yield()
wr:close()
f:join()

-- a blocking-pool job in flight (copying from a FIFO waits for a writer)
f = spawn(function() report('interrupted copy:', pcall(fs.copy_file, fifo, dir / 'copy')) end)
this_fiber.yield()
f:interrupt()
f:join()
-- let the abandoned job finish: give its open (if it started) a writer
local unblock = file.stream.new()
unblock:open(fifo, F.read_write)
unblock:close()

fs.remove_all(dir)
-- the abandoned job ends on its pool thread, on its own time: wait for
-- its fds (the FIFO, its eventfd) to go, with a deadline
local time = require 'time'
local tries = 0
while fds() ~= before and tries < 1000 do time.sleep(0.01) tries = tries + 1 end
print('fds leaked:', fds() - before)
