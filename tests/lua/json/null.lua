-- json.null: one value for every module, locked
local json = require 'json'
local other = require './null_module'
print(other.module ~= json, 'each module has its own copy of the table')
print(other.null == json.null, rawequal(other.null, json.null), other.decoded == json.null)
print(json.encode(other.null), json.encode({ other.null }))
print(tostring(json.null), type(json.null), getmetatable(json.null))
print(json.null == nil, json.null == false, json.null == 0)
local ok, e = pcall(function() return json.null.x end)
print(ok, tostring(e), e.category, e.code)
ok, e = pcall(function() json.null.x = 1 end)
print(ok, tostring(e), e.category, e.code)
-- changing one module's copy changes nothing elsewhere
json.null = 'replaced'
json.encode = nil
print(other.null == other.module.null, other.module.encode({ other.null }))
print(require('json').null)   -- the same module gets its same (changed) copy
