-- clock time points: arithmetic and comparisons
local time = require 'time'
for _, name in ipairs({ 'steady_clock', 'system_clock' }) do
  local c = time[name]
  local e = c.epoch()
  print(name, e.seconds_since_epoch)
  local a = e:add(1.5)
  print(a.seconds_since_epoch, a:sub(0.5).seconds_since_epoch)
  local b = e + 2
  local b2 = 2 + e
  print(b.seconds_since_epoch, b == b2, (b - 0.25).seconds_since_epoch)
  print('difference:', b - a, a - b)
  print(a < b, a <= b, b < a, a <= a, a == e:add(1.5), a ~= b)
  print(getmetatable(a))
  local n1 = c.now()
  local n2 = c.now()
  print('now >= epoch:', n1 > e, n2 >= n1 or name == 'system_clock')
end
print(time.system_clock.now().seconds_since_epoch > 1.6e9)
local hr = time.high_resolution_clock
print('is_steady:', hr.is_steady)
local h = hr.now()
print((h + 1 - h), h <= h + 1)
print(pcall(function() return h.add end))
