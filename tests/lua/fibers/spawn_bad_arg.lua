-- spawn checks that its argument is a function
local ok, e = pcall(spawn, 42)
print(ok, e)
ok, e = pcall(spawn)
print(ok, e)
