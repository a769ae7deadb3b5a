-- hostile arguments: no metamethod runs, sizes are bounded
local function try(...)
    local ok, r = pcall(format, ...)
    if ok then print('ok', #r) else print(tostring(r), r.category, r.code, r.arg) end
end
local function boom() error('metamethod called', 0) end
local evil = setmetatable({}, {
    __index = boom, __tostring = boom, __len = boom, __call = boom,
    __concat = boom, __eq = boom, __metatable = 'locked',
})
try('{}', evil)
-- a pair is read raw: __index cannot make one up
try('{}', setmetatable({}, { __index = function(_, i) return i == 1 and 'n' or 2 end }))
try('{n}', setmetatable({ 'n', 7 }, { __index = boom }))
-- __tostring is never used, even for a table that has one
try('{}', setmetatable({}, { __tostring = function() return 'shown' end }))

print('width and precision are capped')
try('{:60000}', 1)
try('{:60001}', 1)
try('{:65536}', 1)
try('{:999999999}', 1)
try('{:99999999999999999999999999}', 1)
try('{:.60000f}', 1)
try('{:#.60000g}', 1e-4)
try('{:.60000e}', -1e300)
try('{:.60001f}', 1)
try('{:.65536f}', 1)
try('{:.999999999f}', 1)
try('{:{}}', 1, 60000)
try('{:{}}', 1, 60001)
try('{:{}}', 1, 2^53)
try('{:.{}}', 'x', 1e300)
try('{:{}}', 1, 0/0)
print('big inputs')
try(string.rep('{}', 5000), unpack((function() local t = {} for i = 1, 5000 do t[i] = i end return t end)()))
try(string.rep('{{', 100000))
try('{:.60000f}', 1e300)
print('growth beyond the given text is bounded (16 MiB)')
try(string.rep('{0:60000}', 270), 1)         -- 16.2e6 bytes: within
try(string.rep('{0:60000}', 300), 1)         -- 18e6 bytes: refused
try(string.rep('{0:.60000f}', 300), 1)
try('{}', string.rep('x', 20 * 1024 * 1024))  -- its own text does not count
