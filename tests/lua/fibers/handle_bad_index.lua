-- unknown keys of a fiber handle raise bad_index
local f = spawn(function() end)
local ok, e = pcall(function() return f.nope end)
print(ok, tostring(e.category), e.code, tostring(e), e.index)
print(getmetatable(f))
f:join()
