-- A userdata that only claims to be a byte_span (newproxy with the name in
-- __metatable) is refused by every read and write method: EINVAL for the
-- buffer argument, nothing read or written, the object still works.
local ip = require 'ip'
local pipe = require 'pipe'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local forged = newproxy(true)
local mt = getmetatable(forged)
mt.__metatable = 'byte_span'
mt.__len = function() return 4 end
print('claims:', getmetatable(forged), type(forged))

local r, w = pipe.pair()
print('pipe read_some:', try(r.read_some, r, forged))
print('pipe write_some:', try(w.write_some, w, forged))
w:write_some('ok')
local buf = byte_span.new(4)
print('pipe still works:', r:read_some(buf), buf:slice(1, 2))

local acc = ip.tcp.acceptor.new()
acc:open('v4')
acc:bind('127.0.0.1', 0)
acc:listen()
local client = ip.tcp.socket.new()
local connecting = spawn(function() client:connect('127.0.0.1', acc.local_port) end)
local server = acc:accept()
connecting:join()
print('tcp read_some:', try(server.read_some, server, forged))
print('tcp write_some:', try(client.write_some, client, forged))
print('tcp receive:', try(server.receive, server, forged))
print('tcp send:', try(client.send, client, forged))
client:write_some('hi')
print('tcp still works:', server:read_some(buf), buf:slice(1, 2))
client:close()
server:close()
acc:close()
