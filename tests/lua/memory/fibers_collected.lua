-- finished fibers (their records, handles and coroutines) are collected;
-- the pool of idle coroutines is bounded, so memory returns to about where
-- it was once many suspended fibers have finished
local time = require 'time'
local N = 20000
local handles = setmetatable({}, { __mode = 'k' })
local function settle()
  for _ = 1, 4 do collectgarbage() end
  return collectgarbage('count')
end
local base = settle()
local live = {}
for i = 1, N do
  local h = spawn(function() time.sleep(0) end) -- suspends: needs its own coroutine
  handles[h] = true
  live[i] = h
end
for i = 1, N do live[i]:join() end
local peak = collectgarbage('count')
live = nil
local after = settle()
local n = 0
for _ in pairs(handles) do n = n + 1 end
print('handles alive:', n)
-- 20k suspended fibers take well over 10 MB; what stays is small
print('peak above 10 MB:', peak - base > 10 * 1024)
print('kept below 3 MB:', after - base < 3 * 1024)
