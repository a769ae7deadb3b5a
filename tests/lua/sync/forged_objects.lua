-- methods recognise their objects by the runtime's own metatable: a table
-- that only claims to be one (`__metatable = 'mutex'`, ...) gets EINVAL and
-- none of its metamethods run
local mutex = require 'mutex'
local recursive_mutex = require 'recursive_mutex'
local condition_variable = require 'condition_variable'
local future = require 'future'
local time = require 'time'
local ran = false
local function forged(name)
  return setmetatable({}, {
    __metatable = name,
    __index = function() ran = true error('index ran', 0) end,
    __newindex = function() ran = true error('newindex ran', 0) end,
  })
end
local p, fu = future.new()
local calls = {
  { 'mutex:lock', mutex.new().lock, 'mutex' },
  { 'mutex:unlock', mutex.new().unlock, 'mutex' },
  { 'recursive_mutex:lock', recursive_mutex.new().lock, 'recursive_mutex' },
  { 'condition_variable:notify_all', condition_variable.new().notify_all, 'condition_variable' },
  { 'future:get', fu.get, 'future' },
  { 'promise:set_value', p.set_value, 'promise' },
  { 'steady_timer:wait', time.steady_timer.new().wait, 'steady_timer' },
}
for _, c in ipairs(calls) do
  local ok, e = pcall(c[2], forged(c[3]))
  print(c[1], ok, tostring(e))
end
local m = mutex.new()
m:lock()
print('condition_variable:wait with a forged mutex',
  pcall(condition_variable.new().wait, condition_variable.new(), forged('mutex')))
print('steady_timer:expires_at with a forged time point',
  pcall(time.steady_timer.new().expires_at, time.steady_timer.new(), forged('steady_clock.time_point')))
print('metamethods ran:', ran)
