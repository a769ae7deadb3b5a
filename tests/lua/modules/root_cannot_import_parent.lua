-- the root module has no parent
local ok, e = pcall(require, '../anything')
print(ok, e.code, tostring(e.category), tostring(e))
ok, e = pcall(require, '../../anything')
print(ok, e.code)
