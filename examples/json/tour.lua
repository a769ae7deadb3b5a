local json = require 'json'

-- encode: arrays, objects (keys in byte order), json.null
print(json.encode({ 'foo', { bar = { 'baz', json.null, 1, 2.5 } } }))
print(json.encode({ c = 0, b = 0, a = 0 }))
print(json.encode({}), json.encode(json.into_array()))
print(json.encode({ name = 'x', tags = { 'a', 'b' } }, { indent = '  ' }))

-- decode: arrays come back tagged, null as json.null
local v = json.decode('{"items": [1, null, "three"], "ok": true}')
print(json.is_array(v.items), v.items[2] == json.null, v.ok)

-- __tojson: a type decides its own JSON form
local point_mt = {
    __tojson = function(p, state)
        local w = state.writer
        w:begin_array()
        w:value(p.x)
        w:value(p.y)
        w:end_array()
    end,
}
print(json.encode({ origin = setmetatable({ x = 0, y = 0 }, point_mt) }))

-- errors are values with a category and a code
local ok, err = pcall(json.decode, '[1, 2')
print(ok, err, err.category == json.lexer_ecat)

-- format: {fmt}-style, a global
print(format('{} and {:>5}|', 'a', 'b'))
print(format('{:.2f} {:X} {:08.3f} {:+}', 3.14159, 255, -2.5, 7))
print(format('{1}{0}{1} {name:*^9}', 'cad', 'abra', { 'name', 'mid' }))
