-- Runtime objects of every kind still referenced when the VM closes (here by
-- system.exit, with fibers waiting), and finalizers that use them while it
-- closes: reports, never a crash.
local future = require 'future'
local time = require 'time'
local mutex = require 'mutex'
local ok_fiber = spawn(function() return 1 end)
local failed_fiber = spawn(function() error({ code = 'not a number' }) end)
local sleeper = spawn(function() time.sleep(3600) end)
local joined = spawn(function() return 2 end)
local interrupted = spawn(function() time.sleep(3600) end)
local p1, f1 = future.new()
local p2, f2 = future.new()
local span = byte_span.new(16)
local rust_error = select(2, pcall(byte_span.new, -1))
local lua_error = select(2, pcall(time.sleep, -1))
local co = coroutine.create(function() coroutine.yield() end)
coroutine.resume(co)
keep = { ok_fiber, failed_fiber, sleeper, joined, interrupted, p1, f1, p2, f2,
         span, rust_error, lua_error, co }
local function finalizer(fn)
  local u = newproxy(true)
  getmetatable(u).__gc = fn
  keep[#keep + 1] = u
end
finalizer(function() ok_fiber:join() end)
finalizer(function() sleeper:interrupt() end)
finalizer(function() sleeper:detach() end)
finalizer(function() p1:set_value(1) end)
finalizer(function() f2:get() end)
finalizer(function() span:find('x') end)
finalizer(function() error(rust_error) end)
finalizer(function() error(lua_error) end)
finalizer(function()
  error(setmetatable({}, { __tostring = function() error('user __tostring ran') end }))
end)
finalizer(function() assert(coroutine.resume(co)) end)
finalizer(function() assert(coroutine.resume(coroutine.create(function() print('coroutine at close') end))) end)
local m = mutex.new()
m:lock()
spawn(function() f1:get() end)
spawn(function() m:lock() end)
spawn(function() print(joined:join()) interrupted:interrupt() end)
time.sleep(0)
print('main done')
require('system').exit(0)
