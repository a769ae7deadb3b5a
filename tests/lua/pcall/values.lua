-- pcall/xpcall return values and errors like Lua 5.1
print(pcall(function(...) return ... end, 1, nil, 3))
print(pcall(error, 'msg', 0))
print(pcall(error))
print(xpcall(function() return 'a', 'b' end, print))
print(xpcall(function() error({}) end, function(e) return type(e) end))
print(pcall(42))
