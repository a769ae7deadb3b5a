-- message copying: arrays, objects, dropped values, nesting, big values
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
print(echo(1.5), echo(true), echo(false), echo('s\0tr'), echo(0/0) ~= echo(0/0))
print(echo(math.huge), echo(-math.huge))
print(json.encode(echo({ 1, 2, 3, x = 'ignored' })))
print(json.encode(echo({ 1, 2, print, 4 })))
print(json.encode(echo({ a = 1, b = print, c = { d = { e = 'deep' } }, [1.5] = 'x', [true] = 1 })))
print(json.encode(echo({})))
print(json.encode(echo({ { {} }, setmetatable({}, {}), 5 })))
print(json.encode(echo({ k = setmetatable({}, {}), co = coroutine.create(print), s = byte_span.new(1) })))
local shared = { 'dag' }
print(json.encode(echo({ shared, shared })))
print(getmetatable(echo({})))
local big = string.rep('x', 8 * 1024 * 1024)
print(#echo(big), echo(big) == big)
local deep = {}
local t = deep
for _ = 1, 150 do t.n = {} t = t.n end
local back = echo(deep)
local d = 0
while back.n do back = back.n d = d + 1 end
print('depth', d)
local inner = { 'x' }
local c2 = { inner } inner[2] = c2
local ok, e = pcall(w.send, w, c2)
print('nested cycle', ok, tostring(e))

-- nesting past the message depth limit
local deepest = {}
t = deepest
for _ = 1, 100000 do t.n = {} t = t.n end
print('too deep', pcall(w.send, w, deepest))
w:send('stop')
