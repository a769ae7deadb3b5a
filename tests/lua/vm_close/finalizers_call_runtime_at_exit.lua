-- Finalizers that run while the VM closes and call into the runtime (ring
-- ops, byte_span methods, error decoding, print) end as finalizer errors or
-- work; none crashes the process.
local time = require 'time'
local mutex = require 'mutex'
local future = require 'future'
local m = mutex.new()
local calls = {
  function() print('print at close') end,
  function() time.sleep(0) end,
  function() time.steady_clock.now() end,
  function() local t = time.steady_timer.new() t:expires_after(1) t:wait() end,
  function() m:lock() m:unlock() end,
  function() local bs = byte_span.new(4) bs[1] = 65 assert(#bs == 4) bs:slice(1, 2) tostring(bs) bs:find('A') end,
  function() byte_span.append('a', byte_span.new(2)) end,
  function() local p, fu = future.new() p:set_value(1) fu:get() end,
  function() spawn(function() end) end,
  function() this_fiber.yield() end,
  function() pcall(error, setmetatable({}, { __tostring = function() return 'x' end })) end,
  function() error(require('generic_error').EINVAL) end,
  function() error('plain') end,
}
keep = {}
for i, fn in ipairs(calls) do
  local u = newproxy(true)
  getmetatable(u).__gc = fn
  keep[i] = u
end
local span = byte_span.new(8)
keep.span = span
keep.promise = future.new()
keep.handle = spawn(function() error('kept handle') end)
print('main done')
