-- Every runtime object's metatable is locked: getmetatable gives its name
-- (never the table, so no __index/__gc/... can be read or replaced) and
-- setmetatable refuses to change it. Walks every table reachable from the
-- globals and the builtin modules, plus one object of each runtime type.
local time = require 'time'
local promise, future = require('future').new()
local _, err = pcall(setfenv, spawn, {})
local objects = {
  { 'fiber handle', spawn(function() end) },
  { 'this_fiber', this_fiber },
  { 'mutex', require('mutex').new() },
  { 'recursive_mutex', require('recursive_mutex').new() },
  { 'condition_variable', require('condition_variable').new() },
  { 'promise', promise },
  { 'future', future },
  { 'steady_timer', time.steady_timer.new() },
  { 'system_timer', time.system_timer.new() },
  { 'steady time point', time.steady_clock.now() },
  { 'system time point', time.system_clock.now() },
  { 'high_resolution time point', time.high_resolution_clock.now() },
  { 'error value', err },
  { 'error category', err.category },
  { 'byte_span', byte_span.new(1) },
  { 'system.out', require('system').out },
  { 'string', '' },
}
for _, o in ipairs(objects) do
  local name, obj = o[1], o[2]
  local mt = getmetatable(obj)
  local ok = pcall(setmetatable, obj, {})
  print(name, type(mt), mt, 'setmetatable:', ok)
end
-- everything reachable: no table has a readable metatable table
local seen, open = {}, {}
local function walk(v, path, depth)
  if type(v) ~= 'table' or seen[v] or depth > 5 then return end
  seen[v] = true
  if type(getmetatable(v)) == 'table' then open[#open + 1] = path end
  for k, x in pairs(v) do walk(x, path .. '.' .. tostring(k), depth + 1) end
end
walk(_G, '_G', 0)
for _, id in ipairs({ 'time', 'mutex', 'recursive_mutex', 'condition_variable',
                      'future', 'generic_error', 'system' }) do
  walk(require(id), id, 0)
end
print('tables with an open metatable:', #open, table.concat(open, ' '))
