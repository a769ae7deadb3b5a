-- missing modules raise module_not_found with the id in .module
-- ('regex', 'tls': Emilua core modules luring lacks)
for _, id in ipairs({ './nope', '/fixtures/nope', '/nodir/nope', 'no_such_package', 'regex', 'tls' }) do
  local ok, e = pcall(require, id)
  print(id, ok, e.code, tostring(e.category), tostring(e), e.module)
end
