-- a huge string error value goes through join and pcall intact
local big = string.rep('x', 16 * 1024 * 1024)
local h = spawn(function() error(big, 0) end)
local ok, e = pcall(h.join, h)
print(ok, rawequal(e, big), #e)
print(pcall(error, big .. 'y', 0) == false)
