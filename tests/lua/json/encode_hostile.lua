-- hostile tables: metamethods never run, cycles and depth are bounded
local json = require 'json'
local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

local function boom() error('metamethod called', 0) end
local evil_mt = {
    __index = boom, __newindex = boom, __pairs = boom, __ipairs = boom,
    __len = boom, __eq = boom, __lt = boom, __tostring = boom, __call = boom,
    __metatable = 'locked',
}
print('metamethods are not called')
try(setmetatable({ 1, 2 }, evil_mt))
try(setmetatable({ a = 1 }, evil_mt))
try(setmetatable({}, evil_mt))
try({ inner = setmetatable({ 'x' }, evil_mt) })
-- a table whose __index would claim elements it does not have
try(setmetatable({}, { __index = function(_, i) return i end }))
try(setmetatable({ 1 }, { __len = function() return 100 end }))

print('cycles')
local t = {}
t.self = t
try(t)
local a, b = {}, {}
a[1], b[1] = b, a
try(a)
local c = { 1 }
c[2] = c
try(c)
try({ x = { y = { z = t } } })
-- after a failed encode, nothing stays marked as visited
try({ 'fine', { 'again' } })

print('depth')
local function nest(n, array)
    local root = {}
    local cur = root
    for _ = 2, n do
        local nxt = {}
        if array then cur[1] = nxt else cur.k = nxt end
        cur = nxt
    end
    return root
end
print(#json.encode(nest(127, true)))
try(nest(128, true))
print(#json.encode(nest(127, false)))
try(nest(128, false))
try(nest(100000, true))
-- the depth counter is back to zero after an error
print(#json.encode(nest(127, true)))

print('bytes that are not UTF-8')
try({ ['\255'] = 1 })
try({ k = 'ok\192' })
try({ '\237\160\128' })              -- an encoded surrogate
print('big values')
local big = string.rep('x', 1048576)
print(#json.encode(big))
local many = {}
for i = 1, 100000 do many[i] = i end
print(#json.encode(many))
-- big objects: no Rust-side handle per member (LuaJIT has few of them)
local wide = {}
for i = 1, 100000 do wide['k' .. i] = { i } end
local text = json.encode({ wide = wide })
print(#text)
local back = json.decode(text)
print(back.wide.k100000[1], json.is_array(back.wide.k1))
