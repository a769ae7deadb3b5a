-- Regression (issue 6 item 1): in a spawned fiber, getfenv(0) was the
-- runtime's own globals; their `require` loaded `io` (io.popen ran a shell
-- command), their `os` was complete and their `load` took a corrupted
-- string.dump chunk that crashed the VM. Every step of that chain now ends
-- in the module's own, safe globals.
spawn(function()
  local g = getfenv(0)
  print('fiber globals are the module\'s:', g == _G)
  fiber_globals = g
  print('os.execute:', g.os.execute, 'io:', g.io, 'string.dump:', g.string.dump)
  print('load of bytecode:', g.load('\27LJ\2\10garbage'))
  print('load of bytecode from a reader:', g.load(function() return '\27LJ\2' end))
end):join()
-- the module's require (the one the fiber saw) knows none of them
for _, id in ipairs({ 'io', 'debug', 'os', 'ffi', 'package' }) do
  local ok, e = pcall(fiber_globals.require, id)
  print('require ' .. id .. ':', ok, tostring(e))
end
