-- no io, os.execute, debug, ffi, package, dofile, loadfile
print(io, debug, package, dofile, loadfile, jit, module)
print(os.execute, os.exit, os.remove, os.rename, os.getenv ~= nil, os.time ~= nil)
local ok, e = pcall(require, 'ffi')
print(ok, tostring(e))
print(string.dump ~= nil)
