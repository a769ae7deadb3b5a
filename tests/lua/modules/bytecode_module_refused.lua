-- a module file holding genuine LuaJIT bytecode (fixtures/bytecode_mod.lua,
-- a dump of `return 'escaped'` by this build's LuaJIT) is refused: modules
-- are source text only, like every chunk of user code
local ok, e = pcall(require, '/fixtures/bytecode_mod')
print(ok, e)
