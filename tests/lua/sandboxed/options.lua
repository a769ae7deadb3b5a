-- spawn_vm{ sandbox = ... }: a bad value or any option (none is supported
-- yet) is refused naming it; nothing is ever run unsandboxed. A module
-- that does not exist is module_not_found, as for an in-process spawn.
local cases = {
  { module = '/fixtures/never_runs', sandbox = 'yes' },
  { module = '/fixtures/never_runs', sandbox = false },
  { module = '/fixtures/never_runs', sandbox = setmetatable({}, {}) },
  { module = '/fixtures/never_runs', sandbox = { network = 'loopback' } },
  { module = '/fixtures/never_runs', sandbox = { [1] = true } },
  { module = '/fixtures/never_runs', sandbox = {}, new_master = true },
  { module = '/fixtures/never_runs', sandbox = {}, inherit_context = false },
  { module = '', sandbox = {} },
  { module = 'time', sandbox = {} },
  { module = '/fixtures/no_such_module', sandbox = {} },
}
for i, opts in ipairs(cases) do
  local ok, e = pcall(spawn_vm, opts)
  print(i, ok, tostring(e), type(e) == 'table' and e.arg or nil)
end
