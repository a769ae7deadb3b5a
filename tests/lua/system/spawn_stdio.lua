-- system.spawn: every stdio mode ("share", a file_descriptor, nil =
-- /dev/null) and extra_fds, read and written through pipe streams
local system = require 'system'
local pipe = require 'pipe'

local function read_all(r)
  local parts, buf = {}, byte_span.new(256)
  while true do
    local ok, n = pcall(r.read_some, r, buf)
    if not ok then break end
    parts[#parts + 1] = tostring(buf:slice(1, n))
  end
  return table.concat(parts)
end

-- stdout on a pipe; stdin nil (/dev/null: cat sees EOF at once)
-- (the child gets a duplicate: the parent closes its own copy, or the
-- pipe never reaches EOF)
local r, w = pipe.pair()
local wfd = w:release()
local p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'cat; echo out' },
                        stdout = wfd }
wfd:close()
print('stdout pipe:', string.format('%q', read_all(r)))
p:wait()
print('exit', p.exit_code)

-- stdin from a pipe, stdout and stderr on the same pipe
local in_r, in_w = pipe.pair()
local out_r, out_w = pipe.pair()
local out_fd = out_w:release()
p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'read line; echo "got $line"; echo err >&2' },
                  stdin = in_r:release(), stdout = out_fd, stderr = out_fd }
out_fd:close()
in_w:write_some('hello\n')
in_w:close()
print('stdin pipe:', string.format('%q', read_all(out_r)))
p:wait()

-- "share": the child writes to luring's own stdout (ordered after print)
print('before share')
p = system.spawn{ program = '/bin/echo', arguments = { 'echo', 'shared stdout' }, stdout = 'share' }
p:wait()

-- nil stdout and stderr: output is discarded
p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'echo lost; echo lost >&2; exit 4' } }
p:wait()
print('nil stdio exit', p.exit_code)

-- extra_fds: the pipe's write end as the child's fd 5
r, w = pipe.pair()
wfd = w:release()
p = system.spawn{ program = '/bin/sh', arguments = { 'sh', '-c', 'echo extra >&5' },
                  extra_fds = { [5] = wfd } }
wfd:close()
print('extra fd 5:', string.format('%q', read_all(r)))
p:wait()
