-- options: --memory-limit 64M
-- A VM that reaches its memory limit gets "not enough memory" errors that
-- pcall catches, whatever allocates (strings, tables, string.rep,
-- table.concat, string.format); once the memory is released it goes on.
-- A fiber killed by the error panics like for any other error.
local function exhaust(grow)
  local hog = {}
  local ok, err = pcall(function() local i = 0 while true do i = i + 1 hog[i] = grow(i) end end)
  local n = #hog
  hog = nil
  collectgarbage()
  return ok, err, n > 0
end
print('strings', exhaust(function(i) return string.rep('x', 1e5) .. i end))
print('tables', exhaust(function(i) return { i, i, i, i, i, i, i, i } end))
print('string.rep', pcall(string.rep, 'x', 256 * 2^20))
local parts = {}
for i = 1, 4 do parts[i] = string.rep(tostring(i % 10), 2^20) end
print('table.concat', #table.concat(parts))
print('table.concat too big', pcall(function() return #table.concat({ string.rep(table.concat(parts), 20) }) end))
parts = nil
collectgarbage()
print('string.format', pcall(function()
  return string.format('%s%s', string.rep('a', 40 * 2^20), string.rep('b', 40 * 2^20))
end))
collectgarbage()
local f = spawn(function()
  local t = {}
  local i = 0
  while true do i = i + 1 t[i] = string.rep('y', 1e5) .. i end
end)
print('join', pcall(f.join, f))
collectgarbage()
spawn(function()
  local t = {}
  local i = 0
  while true do i = i + 1 t[i] = { i } end
end)
this_fiber.yield()
collectgarbage()
print('still running', #string.rep('z', 2^20))
