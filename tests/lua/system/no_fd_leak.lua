-- spawning, waiting (also interrupted), signal sets and collected
-- handles leave no fd behind: a child counts this process's fds
local system = require 'system'
local pipe = require 'pipe'
local S = system.signal

-- (the child counts only once told to: by then spawn has returned and
-- its own temporary fds are closed)
local function count_fds()
  local r, w = pipe.pair()
  local go_r, go_w = pipe.pair()
  local wfd, go_fd = w:release(), go_r:release()
  local p = system.spawn{ program = '/bin/sh',
    arguments = { 'sh', '-c', 'read go; ls /proc/' .. system.getpid() .. '/fd | wc -l' },
    stdout = wfd, stdin = go_fd }
  wfd:close()
  go_fd:close()
  go_w:write_some('go\n')
  local buf = byte_span.new(64)
  local n = r:read_some(buf)
  r:close()
  go_w:close()
  p:wait()
  return tonumber(tostring(buf:slice(1, n)))
end

local function round()
  -- spawn and wait, with a pipe and /dev/null
  local r, w = pipe.pair()
  local wfd = w:release()
  local p = system.spawn{ program = '/bin/echo', arguments = { 'echo', 'x' }, stdout = wfd, stdin = nil }
  wfd:close()
  r:read_some(byte_span.new(8))
  r:close()
  p:wait()
  -- an interrupted wait, then the child killed
  p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }
  local f = spawn(function() pcall(p.wait, p) end)
  this_fiber.yield()
  f:interrupt()
  f:join()
  p:kill(S.SIGKILL)
  p:wait()
  -- a set that waited, one that was interrupted, both collected
  local set = S.set.new(S.SIGUSR1)
  S.raise(S.SIGUSR1)
  set:wait()
  f = spawn(function() pcall(set.wait, set) end)
  this_fiber.yield()
  f:interrupt()
  f:join()
  -- a handle collected while its child runs (reaped in the background)
  local pid = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }.pid
  -- an exec failure
  pcall(system.spawn, { program = '/nonexistent' })
  return pid
end

local time = require 'time'
-- collects garbage until the collected child `pid` was reaped (then the
-- reaper has closed its pidfd)
local function settle(pid)
  local deadline = time.steady_clock.now() + 30  -- generous
  repeat
    collectgarbage()
    collectgarbage()
    if not pcall(system.kill, pid, 0) then return end
    time.sleep(0.01)
  until time.steady_clock.now() > deadline
  print('child ' .. pid .. ' was not reaped')
end

settle(round()) -- starts the background reaper (its eventfd stays)
local before = count_fds()
local pids = {}
for i = 1, 20 do pids[i] = round() end
for i = 1, 20 do settle(pids[i]) end
-- A collected object's fd closes when its last op's completion is reaped
-- (an interrupted signal wait's cancellation may still be in flight on a
-- loaded machine): count again until the fds are back, or a deadline.
local after
local deadline = time.steady_clock.now() + 30  -- generous
repeat
  collectgarbage()
  collectgarbage()
  after = count_fds()
  if after == before then break end
  time.sleep(0.01)
until time.steady_clock.now() > deadline
print('fds before and after 20 rounds:', before == after, after - before)
