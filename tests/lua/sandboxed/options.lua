-- spawn_vm{ sandbox = ... }: a bad value or an unknown option is refused
-- naming it (EINVAL, arg 'sandbox/<option>'), before anything starts;
-- nothing is ever run unsandboxed or with a grant it did not ask for. A
-- module that does not exist is module_not_found, as for an in-process
-- spawn.
local M = '/fixtures/never_runs'
local function sb(options) return { module = M, sandbox = options } end
local cases = {
  { module = M, sandbox = 'yes' },
  { module = M, sandbox = false },
  { module = M, sandbox = setmetatable({}, {}) },
  sb{ networking = 'loopback' },
  sb{ [1] = true },
  sb{ read_only = '/etc' },
  sb{ read_only = { 'etc' } },
  sb{ read_only = { '/etc', 7 } },
  sb{ read_only = { '/etc\0x' } },
  sb{ read_only = { [2] = '/etc' } },
  sb{ read_only = setmetatable({}, {}) },
  sb{ read_write = { 'tmp' } },
  sb{ read_write = { x = '/tmp' } },
  sb{ network = 'internet' },
  sb{ network = true },
  sb{ network = { tcp_bind = { 70000 } } },
  sb{ network = { tcp_connect = { 1.5 } } },
  sb{ network = { tcp_connect = 80 } },
  sb{ network = { udp = { 53 } } },
  sb{ limits = 10 },
  sb{ limits = { open_files = 0 } },
  sb{ limits = { open_files = 10 } },
  sb{ limits = { processes = 1e9 } },
  sb{ limits = { processes = 2.5 } },
  sb{ limits = { threads = 4 } },
  sb{ memory = '1G' },
  sb{ memory = 1000 },
  sb{ memory = 2^60 },
  sb{ memory = 2^53 },
  sb{ memory = -1 },
  sb{ cpu_seconds = 0 },
  sb{ cpu_seconds = 0.5 },
  sb{ cpu_seconds = '1' },
  sb{ allow_weaker = 'landlock' },
  sb{ allow_weaker = { 'seccomp' } },
  sb{ allow_weaker = { 'namespaces' } },
  { module = M, sandbox = {}, new_master = true },
  { module = M, sandbox = {}, inherit_context = false },
  { module = '', sandbox = {} },
  { module = 'time', sandbox = {} },
  { module = '/fixtures/no_such_module', sandbox = {} },
  { module = '/fixtures/no_such_module', sandbox = { memory = 2^30 } },
}
for i, opts in ipairs(cases) do
  local ok, e = pcall(spawn_vm, opts)
  print(i, ok, tostring(e), type(e) == 'table' and e.arg or nil)
end

-- A path that does not exist, or is not a file or directory, fails the
-- spawn with the supervisor's reason.
for _, key in ipairs{ 'read_only', 'read_write' } do
  local ok, e = pcall(spawn_vm, sb{ [key] = { '/no/such/path' } })
  print(key, ok, tostring(e))
end

-- Every option with a good value: the sandbox starts and runs.
local inbox = require 'inbox'
local ch = spawn_vm{
  module = '/fixtures/echo', monitor = true,
  sandbox = {
    read_only = { '/etc' }, read_write = {},
    network = { tcp_bind = { 0 }, tcp_connect = { 80, 443 } },
    limits = { open_files = 64, processes = 16 },
    memory = 64 * 2^20, cpu_seconds = 30, allow_weaker = { 'landlock' },
  },
}
ch:send{ text = 'all options', n = 0, reply = inbox }
print(inbox:receive().echo)
ch:close()
print(inbox:receive().reason)
for _, network in ipairs{ 'none', 'loopback' } do
  ch = spawn_vm{ module = '/fixtures/echo', monitor = true, sandbox = { network = network } }
  ch:send{ text = network, n = 0, reply = inbox }
  print(inbox:receive().echo)
  ch:close()
  print(inbox:receive().reason)
end
