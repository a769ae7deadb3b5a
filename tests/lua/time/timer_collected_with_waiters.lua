-- a timer the program dropped while fibers wait on it: the waits keep it
-- (it is their argument) and still end at its expiry; once its waiters are
-- all interrupted it is collected, and its kernel timer was cancelled
-- (else this script would take an hour to end: the VM ends only when no
-- op is in flight)
local time = require 'time'
local alive = setmetatable({}, { __mode = 'k' })
local function collect() for _ = 1, 3 do collectgarbage() end end
local function count() local n = 0 for _ in pairs(alive) do n = n + 1 end return n end

local function waiters_on_dropped_timer(secs, n, log)
  local t = time.steady_timer.new()
  t:expires_after(secs)
  alive[t] = true
  local hs = {}
  for i = 1, n do
    hs[i] = spawn(function()
      local ok, e = pcall(t.wait, t)
      log[#log + 1] = i .. ':' .. (ok and 'expired' or tostring(e))
    end)
  end
  return hs
end

local log = {}
local hs = waiters_on_dropped_timer(0.05, 3, log)
this_fiber.yield() -- the waiters wait
collect()
print('timers alive while waited on:', count())
for i = 1, 3 do hs[i]:join() end
print(table.concat(log, ' '))

log = {}
hs = waiters_on_dropped_timer(3600, 3, log)
this_fiber.yield()
for i = 1, 3 do hs[i]:interrupt() end
for i = 1, 3 do hs[i]:join() end
hs = nil
collect()
print(table.concat(log, ' '), 'timers alive:', count())
