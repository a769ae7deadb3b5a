-- modules have their own globals; importer and module don't see each other's
importer_global = 'from importer'
local m = require '/fixtures/globals_mod'
print('importer sees module global:', module_global)
print('via module table:', m.module_global)
print('module table is not _G:', m ~= _G, _G.importer_global)
