-- Flat tables (one level of booleans, numbers and strings) are copied by
-- the raw send and built by the raw receive (src/actor/raw_calls.rs); they
-- must follow every rule of the generic copy, and hand anything else (and
-- every error) to it.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local m = inbox:receive()
    if m == 'stop' then break end
    back:send(m)
  end
  return
end
local json = require 'json'
local w = spawn_vm('.')
w:send(inbox)
local function echo(v)
  w:send(v)
  return inbox:receive()
end
local function show(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do
    out[#out + 1] = type(k) .. ':' .. tostring(k) .. '=' .. type(t[k]) .. ':' .. tostring(t[k])
  end
  return '{' .. table.concat(out, ' ') .. '}'
end
print('array', show(echo({ 1, 'two', true, false, -0.5, 'a\0b' })))
print('nan', (function(t) return t[1] ~= t[1] end)(echo({ 0 / 0 })))
print('array, extra keys dropped', show(echo({ 1, 2, x = 'dropped', [10] = 'dropped' })))
local holes = { 1, 2, 3 }
holes[2] = nil
print('array ends at its first nil', show(echo(holes)))
local sparse = { 1, 2 }
for i = 2, 20 do sparse[2 ^ i] = i end
print('sparse array: its first nil', show(echo(sparse)))
print('array ends at a function', show(echo({ 1, print, 3 })))
print('array with a nested table', json.encode(echo({ 1, { 2 } })))
print('object', show(echo({ a = 1, b = 'x\0y', c = true, ['\0k'] = false })))
print('object, other keys dropped', show(echo({ a = 1, [1.5] = 3, [true] = 4, [-1] = 5 })))
print('object, unsupported values dropped', show(echo({ a = 1, f = print, co = coroutine.create(print) })))
print('object with a nested table', json.encode(echo({ a = 1, t = { b = 2 } })))
print('empty', show(echo({})), getmetatable(echo({ 1 })), getmetatable(echo({ a = 1 })))
local fresh = { 1 }
print('a copy, not the table', echo(fresh) ~= fresh)
print('metatable refused', pcall(w.send, w, setmetatable({ 1 }, {})))
print('metatable refused (object)', pcall(w.send, w, setmetatable({ a = 1 }, {})))

-- limits: the generic copy raises the errors
local long = {}
for i = 1, 1024 * 1024 + 1 do long[i] = i end
local ok, e = pcall(w.send, w, long)
print('array too long', ok, tostring(e))
long[1024 * 1024 + 1] = nil
print('array at the limit', #echo(long))
long = nil
local chunk = string.rep('x', 8 * 1024 * 1024)
local heavy = {}
for i = 1, 9 do heavy[i] = chunk end
ok, e = pcall(w.send, w, heavy)
print('array too heavy', ok, tostring(e))
local heavy_object = {}
for i = 1, 9 do heavy_object['k' .. i] = chunk end
ok, e = pcall(w.send, w, heavy_object)
print('object too heavy', ok, tostring(e))
heavy[9] = nil
print('array at 64 MiB', #echo(heavy))
w:send('stop')
