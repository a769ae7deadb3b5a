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

-- A message is written back through a view of the buffer's first n bytes;
-- the view is kept while messages keep the same length, so a stream of
-- equal-sized messages allocates nothing per message. Any error (EOF, a
-- reset, a failed write) ends the connection: one pcall around the whole
-- loop catches it.
local function echo(sock, buf)
  local read_some, write_some = sock.read_some, sock.write_some
  local view, view_len = nil, -1
  while true do
    local n = read_some(sock, buf)
    if n ~= view_len then
      view, view_len = buf:slice(1, n), n
    end
    local sent = write_some(sock, view)
    while sent < n do -- a short write: send the rest
      sent = sent + write_some(sock, buf:slice(sent + 1, n))
    end
  end
end

local function serve(sock)
  sock:set_option('tcp_no_delay', true)
  pcall(echo, sock, byte_span.new(4096))
  sock:close()
end

while true do
  local sock = acceptor:accept()
  spawn(serve, sock):detach()
end
