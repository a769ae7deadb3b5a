-- stdin: shared line 1\nshared line 2\n
-- A sandboxed actor reads its stdin through system.in_, as an in-process
-- one does: 'share' (this process's stdin, here the harness's pipe), a
-- file_descriptor (a pipe the spawner writes in several chunks, then
-- closes: EOF), or nil (/dev/null: EOF at once); for `sandbox = {}` and
-- Emilua's `subprocess = {}` alike. A bad stdin is refused naming it.
local inbox = require 'inbox'
local pipe = require 'pipe'
local file = require 'file'
local filesystem = require 'filesystem'
local M = '/fixtures/stdin_reader'

-- Everything that arrived, chunks joined with '|', then how it ended.
local function drain()
  local got = {}
  while true do
    local m = inbox:receive()
    if m.ended then return table.concat(got, '|'), m.ended end
    got[#got + 1] = m.chunk
  end
end

-- 'share': all of this process's stdin (the sandbox may read it in one
-- or more chunks), then EOF.
local ch = spawn_vm{ module = M, sandbox = { stdin = 'share' } }
ch:send{ reply = inbox }
local text, ended = drain()
print('share:', (text:gsub('|', '')), ended)

-- A pipe given as stdin: each chunk is written once the previous one was
-- read, so the sandbox sees them one by one; closing the write end is EOF.
for _, form in ipairs{ 'sandbox', 'subprocess' } do
  local rd, wr = pipe.pair()
  local rfd = rd:release()
  local opts = { module = M }
  opts[form] = { stdin = rfd }
  ch = spawn_vm(opts)
  rfd:close() -- the sandbox has its own copy
  ch:send{ reply = inbox }
  for _, chunk in ipairs{ 'one', 'two two', 'three' } do
    wr:write_some(chunk)
    print(form, 'chunk:', inbox:receive().chunk)
  end
  wr:close()
  print(form, 'then:', inbox:receive().ended)
end

-- No stdin (nil): /dev/null, EOF at once.
for _, opts in ipairs{ { sandbox = {} }, { subprocess = {} },
    { subprocess = { stdin = 'share' } } } do
  opts.module = M
  ch = spawn_vm(opts)
  ch:send{ reply = inbox }
  -- (this process's stdin was read to its end above: 'share' is at EOF)
  print('no stdin:', drain())
end

-- Bad values: refused naming the option, nothing runs.
local r, w = pipe.pair()
local closed = w:release()
closed:close()
for i, stdin in ipairs{ 'inherit', 0, true, {}, r, closed, byte_span.new(1) } do
  local ok, e = pcall(spawn_vm, { module = '/fixtures/never_runs', sandbox = { stdin = stdin } })
  print(i, ok, tostring(e), type(e) == 'table' and e.arg or nil)
end

-- A directory (which `..` would let the sandbox climb out of) is refused
-- by the lock-down, with a message that says why.
local dir = file.stream.new()
dir:open(filesystem.path.new('/'), file.open_flag.read_only)
local dfd = dir:release()
local ok, e = pcall(spawn_vm, { module = '/fixtures/never_runs', sandbox = { stdin = dfd } })
print('directory:', ok, (tostring(e):match('standard stream 0 is a directory %(`%.%.` from it would reach the host\'s tree%)') ~= nil))
dfd:close()
