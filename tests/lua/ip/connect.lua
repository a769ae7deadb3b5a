-- ip.connect: tries endpoints in order, skips those the condition refuses,
-- raises the last failure when none connects (asio.misc not_found
-- when none was tried)
local ip = require 'ip'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local acc = ip.tcp.acceptor.new()
acc:open('v4')
acc:bind('127.0.0.1', 0)
acc:listen()
local refused = ip.tcp.socket.new()
refused:open('v4')
refused:bind('127.0.0.1', 0)
local lo = ip.address.loopback_v4()
local results = {
  { address = lo, port = refused.local_port },
  { address = ip.address.loopback_v6(), port = refused.local_port },
  { address = lo, port = acc.local_port },
}
local f = spawn(function() return acc:accept().remote_address end)
local s = ip.tcp.socket.new()
local addr, port = ip.connect(s, results)
print('connected to the third:', addr, port == acc.local_port, s.is_open, f:join())
local tried = {}
s = ip.tcp.socket.new()
f = spawn(function() return acc:accept() end)
addr = ip.connect(s, results, function(a, p)
  tried[#tried + 1] = tostring(a)
  return p == acc.local_port and a.is_v4
end)
f:join()
print('condition saw:', table.concat(tried, ' '), 'connected:', addr)
s = ip.tcp.socket.new()
print('none connects:', try(ip.connect, s, { results[1] }), s.is_open)
print('empty list:', try(ip.connect, s, {}))
print('results not a table:', try(ip.connect, s, 'x'))
print('result not a table:', try(ip.connect, s, { 1 }))
print('condition not a function:', try(ip.connect, s, results, 1))
print('not a socket:', try(ip.connect, acc, results))

