-- An I/O error while reading a module is raised as the OS error (system
-- category); the module is not marked as loaded, so a retry fails the same way.
for _ = 1, 2 do
  local ok, e = pcall(require, '/fixtures/isdir')
  print(ok, tostring(e.category), e.code == require('generic_error').EISDIR.code, tostring(e))
end
