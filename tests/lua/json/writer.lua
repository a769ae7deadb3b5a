-- json.writer: the incremental generator
local json = require 'json'
local function try(f, ...)
    local ok, r = pcall(f, ...)
    if ok then print('ok', r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

local w = json.writer.new()
print(getmetatable(w), w.level)
w:begin_object()
print(w.level)
w:value('n') w:value(1.5)
w:value('list') w:begin_array()
print(w.level)
w:value(true) w:value(false) w:value(json.null) w:value('s')
w:literal('{"raw": [1, 2]}')
w:begin_object() w:end_object()
w:end_array()
w:value('k') w:literal('"lit"')
w:literal('"literal key"') w:value(0)
w:end_object()
print(w.level)
print(w:generate())

print('scalars at the top')
for _, v in ipairs{ 1, 'x', true, json.null } do
    local s = json.writer.new()
    s:value(v)
    print(s:generate())
end

print('misuse')
local function fresh() return json.writer.new() end
local x = fresh()
try(x.generate, x)                       -- nothing written
x:begin_array()
try(x.generate, x)                       -- unfinished
try(x.end_object, x)
try(x.value, x, nil)
try(x.value, x, print)
try(x.value, x, {})
try(x.value, x, byte_span.new(1))
try(x.value, x, 0/0)
try(x.value, x, 1/0)
try(x.value, x, '\255')
try(x.literal, x, 'not json')
try(x.literal, x, '[1,')
try(x.literal, x, '1 2')
try(x.literal, x, 42)
try(x.literal, x, string.rep('[', 127) .. string.rep(']', 127))
x:end_array()
try(x.value, x, 1)                       -- after a complete top-level value
try(x.begin_array, x)
try(x.end_array, x)
print(x:generate())
try(x.generate, x)                       -- spent
try(x.value, x, 1)

local o = fresh()
o:begin_object()
try(o.value, o, 1)                       -- a key must be a string
try(o.begin_array, o)
try(o.literal, o, '1')
try(o.end_array, o)
o:value('k')
try(o.end_object, o)                     -- a key without its value
o:value('v')
o:end_object()
print(o:generate())

print('depth')
local deep = fresh()
for _ = 1, 127 do deep:begin_array() end
try(deep.begin_array, deep)
try(deep.begin_object, deep)
try(deep.literal, deep, '[]')
print(deep.level)

print('not a writer')
try(w.value, {}, 1)
try(w.begin_array, 'x')
try(w.generate, nil)
try(function() return fresh().nope end)
try(function() local y = fresh() y.level = 3 end)
