-- Shared by the tests of this folder (no .out: not a case itself).
-- outcome(label, f, ...): calls f, prints label and 'ok' with its result,
-- or the error's category and message.
-- listener(): a TCP acceptor listening on 127.0.0.1 at a free port.
-- tcp_pair(acc): a connected pair (client, accepted) through `acc`.
local ip = require 'ip'
function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end
function listener()
  local acc = ip.tcp.acceptor.new()
  acc:open('v4')
  acc:bind('127.0.0.1', 0)
  acc:listen()
  return acc
end
function tcp_pair(acc)
  local c = ip.tcp.socket.new()
  local f = spawn(function() return acc:accept() end)
  c:connect('127.0.0.1', acc.local_port)
  return c, f:join()
end
