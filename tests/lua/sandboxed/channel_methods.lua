-- The channel of a sandboxed actor: child_pid, detach and kill on a
-- direct child, and their errors: after close, after detach, and on the
-- host's channel as a sandbox sees it (not a direct child).
local inbox = require 'inbox'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  return tostring(e), type(e) == 'table' and e.arg or nil
end

local ch = spawn_vm{ module = '/fixtures/crashes', sandbox = {}, monitor = true }
print('child_pid', type(ch.child_pid), ch.child_pid % 1 == 0, ch.child_pid > 1)
print('child_pid is set', pcall(function() ch.child_pid = 1 end))
print('unknown key', try(function() return ch.no_such_method end))
print('kill bad signal', try(ch.kill, ch, 0))
print('kill bad signal', try(ch.kill, ch, 65))
print('kill SIGTERM', try(ch.kill, ch, 15))
local n = inbox:receive()
print('ended', n.reason, n.signal)
print('kill after it ended', try(ch.kill, ch))
ch:close()
print('kill after close', try(ch.kill, ch))
print('child_pid after close', ch.child_pid % 1 == 0)
print('detach after close', try(ch.detach, ch))
print('detach again', try(ch.detach, ch))
print('child_pid after detach', try(function() return ch.child_pid end))

ch = spawn_vm{ module = '/fixtures/crashes', sandbox = {}, monitor = true }
ch:detach()
print('kill after detach', try(ch.kill, ch))
print('detach, not a direct child', try(ch.detach, ch))
print('detach of a non-channel', try(ch.detach, {}))
ch:send('exit')
n = inbox:receive()
print('detached, ended', n.reason, n.code)

-- Inside a sandbox, the host's inbox arrives as a channel that is not a
-- direct child.
ch = spawn_vm{ module = '/fixtures/probes_host_channel', sandbox = {}, monitor = true }
ch:send{ reply = inbox }
local r = inbox:receive()
print('inside:', r.kind, r.child_pid, r.detach, r.kill)
n = inbox:receive()
print('ended', n.reason, n.code)
