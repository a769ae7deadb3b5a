-- a child inherits neither the runtime's fds nor its blocked signals nor
-- its ignored SIGPIPE: only 0-2 and what extra_fds gives
local system = require 'system'
local pipe = require 'pipe'
local r, w = pipe.pair()
local keep_r, keep_w = pipe.pair()
local wfd, keep = w:release(), keep_w:release()
local p = system.spawn{
  program = '/bin/sh',
  arguments = { 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo; grep -E "^Sig(Blk|Ign)" /proc/self/status' },
  stdout = wfd, extra_fds = { [7] = keep },
}
wfd:close()
local parts, buf = {}, byte_span.new(512)
while true do
  local ok, n = pcall(r.read_some, r, buf)
  if not ok then break end
  parts[#parts + 1] = tostring(buf:slice(1, n))
end
p:wait()
-- (ls's own directory fd is 3)
print(table.concat(parts))
