-- no io, os.execute, debug, ffi, package, dofile, loadfile, string.dump
-- (newproxy is the safe form: safe_env/newproxy); require knows no
-- io/debug/os/package/jit/string modules
print(io, debug, package, dofile, loadfile, jit, module)
print(os.execute, os.exit, os.remove, os.rename, os.tmpname, os.getenv ~= nil, os.time ~= nil)
for _, id in ipairs({ 'ffi', 'io', 'debug', 'os', 'package', 'jit', 'string', 'jit.util', 'bit' }) do
  local ok, e = pcall(require, id)
  print(id, ok, tostring(e))
end
print(string.dump)
