-- Runs a program with its standard output on a pipe and reads it through
-- a pipe stream while it runs, line by line; then waits for the program.
--   luring examples/spawn_pipe.lua [PROGRAM [ARGUMENTS...]]
-- Without arguments it runs a small shell loop.
local system = require 'system'
local pipe = require 'pipe'

local program, arguments = '/bin/sh', { 'sh', '-c', 'for i in 1 2 3; do echo "line $i"; done; exit 7' }
if system.arguments[3] then
  program = system.arguments[3]
  arguments = {}
  for i = 3, #system.arguments do arguments[#arguments + 1] = system.arguments[i] end
end

local reader, writer = pipe.pair()
-- The child gets a copy of the write end as its stdout; ours is closed
-- right away, so the reader sees end of file once the child is done.
local child_stdout = writer:release()
local child = system.spawn{
  program = program,
  arguments = arguments,
  stdout = child_stdout,
  stderr = 'share',
}
child_stdout:close()

local buf = byte_span.new(4096)
local pending, n_lines = '', 0
while true do
  local ok, n = pcall(reader.read_some, reader, buf)
  if not ok then break end -- end of file (or a read error)
  pending = pending .. tostring(buf:slice(1, n))
  for line in pending:gmatch('([^\n]*)\n') do
    n_lines = n_lines + 1
    print(string.format('%3d | %s', n_lines, line))
  end
  pending = pending:match('[^\n]*$')
end
if #pending > 0 then
  n_lines = n_lines + 1
  print(string.format('%3d | %s', n_lines, pending))
end

child:wait()
print(string.format('exit code %d%s', child.exit_code,
  child.exit_signal and (', signal ' .. child.exit_signal) or ''))
