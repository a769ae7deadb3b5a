-- filesystem.clock: file time points, last_write_time with them, and the
-- errors of each function; cap_get_file/cap_set_file (not provided)
local fs = require 'filesystem'
local time = require 'time'
local file = require 'file'
local clock = fs.clock
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok' end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end

local dir = fs.temp_directory_path() / ('luring-clock-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local p = dir / 'f'
local f = file.stream.new()
f:open(p, bit.bor(file.open_flag.write_only, file.open_flag.create))
f:close()

-- a time point from the clock, from system_clock, and back
local epoch = clock.epoch()
print('epoch:', epoch.seconds_since_epoch, getmetatable(epoch))
local sys = time.system_clock.epoch() + 1000000000.25
local t = clock.from_system(sys)
print('from_system:', t.seconds_since_epoch)
print('to_system:', t:to_system() == sys, t:to_system().seconds_since_epoch)
print('arithmetic:', (t + 1).seconds_since_epoch, (t - 0.25).seconds_since_epoch, (t + 2) - t)
print('add/sub:', t:add(10).seconds_since_epoch, t:sub(10).seconds_since_epoch)
print('compare:', t < t + 1, t + 1 <= t, t == clock.from_system(sys))
local now = clock.now()
local sys_now = time.system_clock.now()
print('now is the system time:', math.abs(now.seconds_since_epoch - sys_now.seconds_since_epoch) < 60)

-- last_write_time: set with a time point, read a time point back
fs.last_write_time(p, t)
local got = fs.last_write_time(p)
print('read back:', getmetatable(got), got == t, got.seconds_since_epoch)
-- a number of seconds still works (luring)
fs.last_write_time(p, 1234567890.5)
print('from a number:', fs.last_write_time(p).seconds_since_epoch)
-- before the epoch
fs.last_write_time(p, clock.epoch() - 1.5)
print('before the epoch:', fs.last_write_time(p).seconds_since_epoch)

-- errors
print('from_system steady:', try(clock.from_system, time.steady_clock.now()))
print('from_system number:', try(clock.from_system, 5))
print('to_system bad self:', try(t.to_system, {}))
print('set steady point:', try(fs.last_write_time, p, time.steady_clock.now()))
print('set string:', try(fs.last_write_time, p, 'yesterday'))
print('add string:', try(t.add, t, 'x'))
print('missing file:', try(fs.last_write_time, dir / 'missing'))
print('set on missing file:', try(fs.last_write_time, dir / 'missing', t))

-- file capabilities are not provided: a clear error, not a missing function
print('cap_get_file:', try(fs.cap_get_file, p))
print('cap_set_file:', try(fs.cap_set_file, p, {}))
print('cap_get_file bad path:', try(fs.cap_get_file, 42))

fs.remove_all(dir)
