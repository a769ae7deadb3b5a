-- A module whose body raised, or that failed to compile, is not remembered:
-- requiring it again (by the same or another path) evaluates it again and
-- raises again, it never returns nil.
for i = 1, 2 do
  local ok, e = pcall(require, '/fixtures/raises')
  print('raises #' .. i, ok, e)
end
local ok, e = pcall(require, '/fixtures/links/raises_alias')
print('raises via a symlink', ok, e)
for i = 1, 2 do
  local ok, e = pcall(require, '/fixtures/bad_syntax')
  print('bad_syntax #' .. i, ok, e)
end
