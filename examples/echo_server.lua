-- An echo server: `luring examples/echo_server.lua PORT` listens on
-- 127.0.0.1:PORT (PORT 0 picks a free port) and prints
-- "listening on 127.0.0.1:N". Each connection gets its own fiber, which
-- sends back whatever it reads until the client closes its side.
local ip = require 'ip'
local system = require 'system'

local port = tonumber(system.arguments[3])
if not port then
  print('usage: luring echo_server.lua PORT')
  system.exit(2)
end

local acceptor = ip.tcp.acceptor.new()
acceptor:open('v4')
acceptor:set_option('reuse_address', true)
acceptor:bind('127.0.0.1', port)
acceptor:listen()
print('listening on ' .. ip.tostring(acceptor.local_address, acceptor.local_port))

local function serve(sock)
  sock:set_option('tcp_no_delay', true)
  local buf = byte_span.new(4096)
  while true do
    local ok, n = pcall(sock.read_some, sock, buf)
    if not ok then break end -- EOF or a reset: the client is gone
    local chunk, sent = buf:slice(1, n), 0
    while sent < n do
      local wrote_ok, m = pcall(sock.write_some, sock, chunk:slice(sent + 1, n))
      if not wrote_ok then sock:close() return end
      sent = sent + m
    end
  end
  sock:close()
end

while true do
  local sock = acceptor:accept()
  spawn(serve, sock):detach()
end
