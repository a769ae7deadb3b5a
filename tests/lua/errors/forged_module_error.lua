-- a module that fails with a forged error value: the importer gets that
-- value back untouched (none of its metamethods run), nothing is reported,
-- and the module stays unloaded, so a later require evaluates it again
local ok, e = pcall(require, './forged_module_fixture')
print(ok, type(e))
local ok2, e2 = pcall(require, './forged_module_fixture')
print(ok2, type(e2), 'same value:', rawequal(e, e2))
print('main continues')
