-- Op waiters are kept by slot index (lua/core/scheduler.lua op_waiters).
-- A slot is freed when its CQE is reaped, which for a completion stashed
-- by an inline attempt (here: the reader's read, completed by the
-- writer's inline write) is before Lua delivers it; the slot may then
-- serve the next op while the old op's waiter still waits. Writes that
-- may complete inline, sleep(0) groups and short timers run together for
-- many turns, and every op's result is checked: each waiter gets its own.
local time = require 'time'
local pipe = require 'pipe'
local r, w = pipe.pair()
local N = 3000
local wrong = {}
local function bad(what) wrong[#wrong + 1] = what end

local writer = spawn(function()
  local one = byte_span.new(1)
  one[1] = 65
  for _ = 1, N do
    local n = w:write_some(one)
    if n ~= 1 then bad('write ' .. tostring(n)) end
  end
  w:close()
end)
local got = 0
local reader = spawn(function()
  local buf = byte_span.new(64)
  while true do
    local ok, n = pcall(r.read_some, r, buf)
    if not ok then break end
    for i = 1, n do
      if buf[i] ~= 65 then bad('byte ' .. buf[i]) end
    end
    got = got + n
  end
end)
local others = {}
for k = 1, 4 do
  others[#others + 1] = spawn(function()
    for _ = 1, 300 do time.sleep(0) end
  end)
  others[#others + 1] = spawn(function()
    for i = 1, 100 do
      local t0 = time.steady_clock.now()
      time.sleep(0.00001 * ((i + k) % 3))
      if time.steady_clock.now() < t0 then bad('clock') end
    end
  end)
end
writer:join()
reader:join()
for i = 1, #others do others[i]:join() end
print('bytes through the pipe', got)
print('wrong results', #wrong, wrong[1])
