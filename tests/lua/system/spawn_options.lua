-- working_directory, environment, umask, sessions and process groups as
-- the child sees them; pdeathsig is accepted
local system = require 'system'
local pipe = require 'pipe'

local function run(script, opts)
  local r, w = pipe.pair()
  opts = opts or {}
  opts.program = '/bin/sh'
  opts.arguments = { 'sh', '-c', script }
  local wfd = w:release()
  opts.stdout = wfd
  local p = system.spawn(opts)
  wfd:close()
  local parts, buf = {}, byte_span.new(256)
  while true do
    local ok, n = pcall(r.read_some, r, buf)
    if not ok then break end
    parts[#parts + 1] = tostring(buf:slice(1, n))
  end
  p:wait()
  return (table.concat(parts):gsub('\n$', '')), p
end

print('cwd:', (run('pwd', { working_directory = '/tmp' })))
print('env:', (run('echo "$FOO|$HOME"', { environment = { FOO = 'bar' } })))
print('umask:', (run('umask', { umask = tonumber('027', 8) })))
local out, p = run('cut -d" " -f5,6 /proc/$$/stat', { start_new_session = true })
print('new session leads its group and session:', out == p.pid .. ' ' .. p.pid)
out, p = run('cut -d" " -f5,6 /proc/$$/stat', { process_group = 0 })
print('own group, our session:', out == p.pid .. ' ' .. system.getsid())
out = run('echo ok', { pdeathsig = system.signal.SIGKILL })
print('pdeathsig:', out)
-- the environment is inherited when not given
print('inherited env:', run('echo "$LURING_SPAWN_TEST"') == (system.environment.LURING_SPAWN_TEST or ''))
