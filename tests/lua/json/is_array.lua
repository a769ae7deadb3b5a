-- is_array / into_array
local json = require 'json'
local function try(f, ...)
    local ok, r = pcall(f, ...)
    if ok then print(r) else print('error', tostring(r), r.category, r.code, r.arg) end
end

local t = {}
print(json.is_array(t), json.into_array(t) == t, json.is_array(t))
print(json.into_array(t) == t)           -- again: fine
print(getmetatable(t), pcall(setmetatable, t, {}))
local fresh = json.into_array()
print(json.is_array(fresh), next(fresh))
print(json.is_array(json.decode('[]')), json.is_array(json.decode('{}')))
for _, v in ipairs{ 'str', 1, true, print } do print(type(v), json.is_array(v)) end
print(json.is_array(nil), json.is_array(json.null))
print(json.is_array(setmetatable({}, { __metatable = 'json.array' })))  -- a claim is not a tag

print('errors')
try(json.into_array, setmetatable({}, {}))
try(json.into_array, setmetatable({}, { __metatable = 'json.array' }))
try(json.into_array, 'str')
try(json.into_array, nil)
try(json.into_array, json.null)

-- every decoded array shares the one tag: it is locked
local arr = json.decode('[1]')
print(getmetatable(arr), pcall(setmetatable, arr, nil))
