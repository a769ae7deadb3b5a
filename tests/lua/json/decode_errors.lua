-- decode() refuses malformed or unrepresentable text with a clear error
local json = require 'json'
local function try(s)
    local ok, r = pcall(json.decode, s)
    if ok then print('no error', r) return end
    local shown = string.format('%q', tostring(s):sub(1, 40))
    shown = shown:gsub('[\128-\255]', function(c) return '\\' .. c:byte() end)
    print(shown, tostring(r), r.category, r.code, r.arg)
    local path = 'nil'
    if r.path then
        local parts = {}
        for i, p in ipairs(r.path) do parts[i] = type(p) .. ' ' .. tostring(p) end
        path = '{' .. table.concat(parts, ', ') .. '}'
    end
    print('', r.category == json.lexer_ecat, r.category == json.dom_ecat,
          'line', r.line, 'column', r.column, 'path', path)
end

print('arguments')
try(nil)
try(42)
try({})
try(byte_span.append('[]'))

print('lexer errors')
try('')
try('   ')
try('[1,2')
try('{"a":1')
try('"unterminated')
try('tru')
try('nul')
try('[1 2]')
try('{"a":1 "b":2}')
try('{"a" 1}')
try('{1:2}')
try('{"a":}')
try('[1,]')
try('{"a":1,}')
try(']')
try('}')
try('[}')
try('{]')
try('[1]x')
try('1 2')
try('01')
try('1.')
try('.5')
try('-')
try('+1')
try('NaN')
try('Infinity')
try('"\\x"')
try('"\\u12"')
try('"\\ud800"')
try('"\\udc00"')
try('"tab\there"')
try('"nl\nhere"')
try('"\255"')
try('\239\187\191[]')            -- a byte order mark
try("'single'")
try('[1]\0')

print('dom errors')
try('1e400')
try('-1e400')
try('[1e999]')
try('[1, 2, {"a": [0, 1e400]}]')
try('{"x": {"y": -1e999}}')
try('{"k": [1], "": {"": 1e400}}')
try('[1,\n 2,\n x]')
try('{\n"a": 1,\n"b" 2}')
try(string.rep('[', 127) .. string.rep(']', 127):sub(2))  -- unbalanced, 127 deep
print(#json.encode(json.decode(string.rep('[', 127) .. string.rep(']', 127))))
try(string.rep('[', 128) .. string.rep(']', 128))
try(string.rep('{"a":', 128) .. '1' .. string.rep('}', 128))
try(string.rep('[', 1000000))
