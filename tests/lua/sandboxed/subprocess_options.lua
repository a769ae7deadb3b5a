-- spawn_vm{ subprocess = {...} } (Emilua's form): every bad value is
-- refused naming the option, nothing is ignored, nothing is run. The
-- namespace flags must be booleans; luring's sandbox always makes every
-- namespace, so any boolean is accepted. `init` is not provided (ENOTSUP).
local pipe = require 'pipe'
local r, w = pipe.pair()
local closed = w:release()
closed:close()
local M = '/fixtures/never_runs'
local cases = {
  { module = M, subprocess = 'yes' },
  { module = M, subprocess = setmetatable({}, {}) },
  { module = M, subprocess = { newns_net = 1 } },
  { module = M, subprocess = { newns_uts = 'true' } },
  { module = M, subprocess = { newns_user = {} } },
  { module = M, subprocess = { environment = 'A=1' } },
  { module = M, subprocess = { environment = { A = 1 } } },
  { module = M, subprocess = { environment = { 'A=1' } } },
  { module = M, subprocess = { environment = { ['A=B'] = 'x' } } },
  { module = M, subprocess = { environment = { A = 'x\0y' } } },
  { module = M, subprocess = { stdin = 'inherit' } },
  { module = M, subprocess = { stdout = 1 } },
  { module = M, subprocess = { stderr = newproxy() } },
  { module = M, subprocess = { stdout = r } },
  { module = M, subprocess = { stdout = closed } },
  { module = M, subprocess = { init = { script = 'print(1)' } } },
  { module = M, subprocess = { init = 'x' } },
  { module = M, subprocess = { newns_cgroup = true } },
  { module = M, subprocess = { [1] = true } },
  { module = M, subprocess = {}, sandbox = {} },
  { module = M, subprocess = {}, inherit_context = false },
  { module = M, subprocess = {}, new_master = true },
  { module = '', subprocess = {} },
  { module = '/fixtures/no_such_module', subprocess = {} },
}
for i, opts in ipairs(cases) do
  local ok, e = pcall(spawn_vm, opts)
  print(i, ok, tostring(e), type(e) == 'table' and e.arg or nil)
end
