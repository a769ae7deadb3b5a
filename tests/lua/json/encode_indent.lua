-- opts.indent: pretty output (Emilua raises ENOTSUP here)
local json = require 'json'
local v = { name = 'x', list = { 1, { a = true }, json.into_array(), {} }, n = json.null }
print(json.encode(v, { indent = '  ' }))
print(json.encode(v, { indent = '\t' }))
print(json.encode(v, { indent = '' }))
print(json.encode({ 1, 2 }, {}))
print(json.encode(1, { indent = '    ' }))

local function try(...)
    local ok, r = pcall(json.encode, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end
try({}, 'opts')
try({}, { indent = 2 })
try({}, { indent = true })
try({}, { state = 'not a table' })
try({ 1 }, { indent = string.rep(' ', 16) })
try({ 1 }, { indent = string.rep(' ', 17) })
