-- importing a module that is still loading raises cyclic_import
require '/fixtures/cyc_self'
local ok, e = pcall(require, '/fixtures/cyc_a')
print('main:', ok, e.code, tostring(e))
