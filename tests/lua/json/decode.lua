-- decode(): every JSON type
local json = require 'json'
local function show(v, ind)
    ind = ind or ''
    if type(v) ~= 'table' then
        return (type(v) == 'string' and string.format('%q', v) or tostring(v))
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. show(v[k]) end
    return (json.is_array(v) and 'array{' or 'object{') .. table.concat(parts, ', ') .. '}'
end
local function d(s) print(s, '->', show(json.decode(s))) end

d('true')
d('false')
d('null')
d('0')
d('-0')
d('42')
d('-17')
d('1.0')
d('1.5e3')
d('-2.5E-3')
d('9007199254740993')          -- beyond 2^53: rounded to a double
d('18446744073709551616')      -- beyond u64: a double
d('1e308')
d('1e-400')                    -- underflows to 0
d('""')
d('"plain"')
d('"\\" \\\\ \\/ \\b \\f \\n \\r \\t"')
d('"\\u0041\\u00e9\\u263a\\ud834\\udd1e"')
d('"\\u0000"')
d('"héllo ☺"')
d('[]')
d('{}')
d('[1, "two", null, true, [], {}]')
d('{"a": 1, "b": [1, 2, {"c": null}], "d": {}}')
d('{"dup": 1, "dup": 2}')      -- the last one wins
d(' \t\n\r [ 1 , 2 ] \n')
d('{"": "empty key", "1": "string key"}')
print(json.decode('"\\u0000x"') == '\0x')
print(json.decode('null') == json.null)

print('round trips')
for _, s in ipairs{ '[1,2,3]', '{"a":{"b":[null,true,false,"x",0.5]}}', '[[],{}]', '"\\u0001"', '1e+300' } do
    print(s, json.encode(json.decode(s)))
end
