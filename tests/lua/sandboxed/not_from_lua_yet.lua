-- spawn_vm{ sandbox = ... } is not available from Lua yet: it is refused
-- with ENOTSUP naming the option, whatever the value, and never runs the
-- module unsandboxed (an unknown key would be ignored).
for _, sandbox in ipairs({ {}, { network = 'loopback' }, false, 'yes' }) do
  local ok, e = pcall(spawn_vm, { module = './fixtures/never_runs', sandbox = sandbox })
  print(ok, tostring(e), e.arg)
end
local ok, e = pcall(spawn_vm, { module = './fixtures/never_runs', sandbox = {}, monitor = true })
print(ok, tostring(e), e.arg)
