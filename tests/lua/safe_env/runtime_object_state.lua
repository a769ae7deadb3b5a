-- Runtime objects keep their state where user code cannot reach it: no raw
-- field of a mutex, recursive_mutex, condition_variable, future or timer
-- holds a fiber record, a wait queue or a ring op id, while fibers wait on
-- them; and a table that merely claims a runtime metatable name is refused
-- (EINVAL), so the runtime never stores its records into a user's table.
local mutex, rmutex = require 'mutex', require 'recursive_mutex'
local cv, future, time = require 'condition_variable', require 'future', require 'time'
local m, rm, c = mutex.new(), rmutex.new(), cv.new()
local p, fu = future.new()
local t = time.steady_timer.new()
t:expires_after(30)
m:lock()
rm:lock()
local waiters = {
  spawn(function() m:lock() m:unlock() end),
  spawn(function() rm:lock() rm:unlock() end),
  spawn(function() local m2 = mutex.new() m2:lock() c:wait(m2) end),
  spawn(function() fu:get() end),
  spawn(function() pcall(t.wait, t) end),
}
this_fiber.yield()
local function raw_fields(obj)
  local n = 0
  for _ in next, obj do n = n + 1 end
  return n
end
print('raw fields:', raw_fields(m), raw_fields(rm), raw_fields(c), raw_fields(fu), raw_fields(t))
for _, probe in ipairs({ { m, 'q' }, { rm, 'owner' }, { c, 'q' }, { fu, 'st' }, { t, 'pending' } }) do
  local ok, e = pcall(function() return probe[1][probe[2]] end)
  print('field ' .. probe[2] .. ':', ok, tostring(e))
end
-- forged objects: right metatable name, fields the runtime would use
local function forged(name, fields)
  return setmetatable(fields, { __metatable = name })
end
local fm = forged('mutex', { locked = true, q = {} })
local frm = forged('recursive_mutex', { owner = false, levels = 0, q = {} })
local fc = forged('condition_variable', { q = {} })
local ffu = forged('future', { st = { state = 'pending', waiters = {}, promise_alive = true } })
local ft = forged('steady_timer', { expiry_ns = 0, group = { id = 1, waiters = {}, aborted = false } })
local function try(name, f, ...)
  local ok, e = pcall(f, ...)
  print(name, ok, tostring(e), type(e) == 'table' and e.arg)
end
try('mutex:unlock', m.unlock, fm)
try('mutex:lock', m.lock, fm)
try('mutex:try_lock', m.try_lock, fm)
try('recursive_mutex:lock', rm.lock, frm)
try('condition_variable:wait', c.wait, fc, m)
try('condition_variable:wait (forged mutex)', c.wait, c, fm)
try('condition_variable:notify_all', c.notify_all, fc)
try('future:get', fu.get, ffu)
try('steady_timer:cancel', t.cancel, ft)
try('steady_timer:wait', t.wait, ft)
-- the real objects still work
m:unlock()
rm:unlock()
c:notify_all()
p:set_value(1)
print('cancelled:', t:cancel())
for _, h in ipairs(waiters) do h:join() end
print('all waiters done')
