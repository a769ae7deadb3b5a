-- Directories where a module file is expected: `name.lua` that is a
-- directory raises EISDIR (system category) without falling back to
-- `name/init.lua`; a directory without init.lua is module_not_found; an
-- `init.lua` that is a directory raises EISDIR.
for _, id in ipairs({ '/fixtures/both', '/fixtures/nodir', '/fixtures/initdir' }) do
  local ok, e = pcall(require, id)
  print(id, ok, tostring(e.category), e.code == require('generic_error').EISDIR.code, tostring(e))
end
