-- arrays vs objects, key handling, nesting
local json = require 'json'
local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

print('arrays')
try({ 1, 2, 3 })
try({ 'a', { 'b', { 'c' } } })
try({ true, json.null, false })
try(json.into_array())              -- an empty array
try(json.into_array({}))
try({})                             -- an empty table is an object
try({ 1, 2, x = 'ignored' })        -- non-integer keys of an array are left out
try({ 1, nil, 3 })                  -- ipairs order: up to the first nil
local sparse = json.into_array({ [2] = 'b' })
try(sparse)                         -- tagged but no [1]: empty array
try({ [1] = 'one', [3] = 'three' })

print('objects')
try({ b = 2, a = 1, c = { d = json.null } })
try({ z = 1, y = 2, x = 3, ['10'] = 4, ['9'] = 5 })   -- keys in byte order
try({ [1.5] = 'num key', [true] = 'bool key', s = 's' }) -- only string keys
try({ [2] = 'no [1]' })             -- #t == 0: an object, number key left out
try({ f = print, t = coroutine.create(print), u = byte_span.new(1), keep = 1 })
try({ nested = { deeper = { deepest = {} } } })
try({ ['key "quoted"\n'] = 1 })

print('array elements without a JSON form')
try({ 1, print })
try({ 1, byte_span.new(2) })
try({ { 0/0 } })
try({ a = 1/0 })

print('shared, not cyclic')
local shared = { 1 }
try({ shared, shared, { s = shared } })
