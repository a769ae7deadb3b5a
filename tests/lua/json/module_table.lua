-- what require 'json' gives, and what user code can do with it
local json = require 'json'
local keys = {}
for k, v in pairs(json) do keys[#keys + 1] = k .. ':' .. type(v) end
table.sort(keys)
print(table.concat(keys, ' '))
print(tostring(json.dom_ecat), tostring(json.lexer_ecat))
print(json.dom_ecat:message(4), json.lexer_ecat:message(9))
print(require('json') == json, 'one copy per importing module')
-- json.encode is runtime Lua code: its environment stays out of reach
print(getfenv(json.encode), pcall(setfenv, json.encode, {}))
print(string.dump)
-- replacing functions in this module's copy is local to it
json.decode = function() return 'patched' end
print(json.decode('1'), json.encode(json.into_array({ 1 })))
print(type(format), 'format is a global')
