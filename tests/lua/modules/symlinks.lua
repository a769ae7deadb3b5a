-- Modules are opened by the kernel beneath the import root (openat2
-- RESOLVE_BENEATH): a symlink that stays inside the root works, one that
-- leads out (absolute, `..` past the root, a directory link) is refused
-- before anything outside is opened; one file reached by several paths is
-- one module, evaluated once.
local t = require '/fixtures/links/target'
print('alias is the same module:', require '/fixtures/links/alias' == t)
print('relative link through .. inside the root:', require '/fixtures/links/up_and_back' == t)
print('directory link inside the root:', require('/fixtures/links/subalias').name,
  require '/fixtures/links/subalias' == require '/fixtures/links/sub')
for _, id in ipairs({ '/fixtures/links/escape_abs', '/fixtures/links/escape_rel',
    '/fixtures/links/escape_dir/load_binary', '/fixtures/links/dev_zero',
    '/fixtures/links/dev_urandom', '/fixtures/links/magic' }) do
  local ok, e = pcall(require, id)
  print(id, ok, tostring(e.category), e.code, e.module == id, tostring(e))
end
-- a refused module is not remembered as loaded: the same error again
local ok, e = pcall(require, '/fixtures/links/escape_abs')
print('again:', ok, tostring(e))
local ok, e = pcall(require, '/fixtures/links/loop')
print('symlink loop:', ok, tostring(e.category), tostring(e))
local ok, e = pcall(require, '/fixtures/links/dangling')
print('dangling:', ok, tostring(e))
