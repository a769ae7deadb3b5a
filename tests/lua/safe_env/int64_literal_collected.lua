-- An int64 literal makes LuaJIT's lexer open its ffi library; the C type
-- state it makes points to a table that only the library table keeps
-- alive. The runtime keeps that table (in the registry, out of user
-- code's reach): collections after the literal, then errors that look the
-- cdata's metamethods up, are plain errors (it read freed memory before,
-- and crashed).
local x = 1LL
collectgarbage() collectgarbage()
local keep = {}
for i = 1, 20000 do keep[i] = { i, tostring(i) } end
collectgarbage()
for _ = 1, 3 do
  local ok, e = pcall(function() return x.foo end)
  print(ok, (tostring(e):gsub('^.-:%d+: ', '')))
end
local ok, e = pcall(function() return x .. 'a' end)
print(ok, (tostring(e):gsub('^.-:%d+: ', '')))
print(x + 1, type(x), ffi)
