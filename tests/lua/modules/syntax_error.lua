-- a syntax error in an imported module raises the Lua message string
local ok, e = pcall(require, '/fixtures/bad_syntax')
print(ok, type(e), e)
-- the failed module can be tried again (same error)
ok, e = pcall(require, '/fixtures/bad_syntax')
print(ok, e)
