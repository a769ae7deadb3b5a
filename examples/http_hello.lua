-- A minimal HTTP/1.1 responder: `luring examples/http_hello.lua PORT`
-- listens on 127.0.0.1:PORT (PORT 0 picks a free port), prints
-- "listening on 127.0.0.1:N" and answers every well-formed request with
-- `200 OK` and a short text body.
--
-- One fiber per connection reads the request line and the headers with a
-- stream.scanner (records end at CRLF). Keep-alive is honoured: an
-- HTTP/1.1 connection serves requests one after the other until the
-- client sends `Connection: close` or closes its side; an HTTP/1.0
-- request closes the connection after the answer unless it asked for
-- `Connection: keep-alive`. A request body announced by Content-Length is
-- read and discarded. A malformed request (a bad request line or header,
-- an unsupported version, a line over 8 KiB, more than 100 headers, a
-- Transfer-Encoding, which this server does not decode) gets `400 Bad
-- Request` and the connection is closed.
local generic_error = require 'generic_error'
local ip = require 'ip'
local stream = require 'stream'
local system = require 'system'

local port = tonumber(system.arguments[3])
if not port then
  print('usage: luring http_hello.lua PORT')
  system.exit(2)
end

local MAX_LINE = 8192
local MAX_HEADERS = 100
local MAX_BODY = 1024 * 1024
local BODY = 'Hello from luring!\n'

local function respond(sock, status, body, keep_alive)
  stream.write_all(sock, table.concat{
    'HTTP/1.1 ', status, '\r\n',
    'Content-Type: text/plain\r\n',
    'Content-Length: ', #body, '\r\n',
    keep_alive and '' or 'Connection: close\r\n',
    '\r\n', body,
  })
end

-- Reads and drops `n` body bytes (some may be in the scanner's buffer).
local function discard_body(sc, n)
  local buffered = sc:buffer()
  if #buffered >= n then
    sc:set_buffer(buffered:sub(n + 1))
    return
  end
  sc:set_buffer('')
  local left = n - #buffered
  local chunk = byte_span.new(4096)
  while left > 0 do
    left = left - sc.stream:read_some(chunk:slice(1, math.min(left, #chunk)))
  end
end

-- One request: returns true to keep the connection, false to close it,
-- or nil, reason for a bad request. Raises at EOF (the client is done).
local function serve_request(sock, sc)
  local line = sc:get_line()
  local method, target, minor = line:match('^(%u+) (%S+) HTTP/1%.([01])$')
  if not method then return nil, 'bad request line' end
  local headers, count = {}, 0
  while true do
    local h = sc:get_line()
    if h == '' then break end
    count = count + 1
    if count > MAX_HEADERS then return nil, 'too many headers' end
    local name, value = h:match('^([%w!#$%%&\'*+.^_`|~-]+):[ \t]*(.-)[ \t]*$')
    if not name then return nil, 'bad header' end
    headers[name:lower()] = value
  end
  if headers['transfer-encoding'] then return nil, 'transfer-encoding' end
  local length = headers['content-length']
  if length then
    length = length:match('^%d+$') and tonumber(length)
    if not length or length > MAX_BODY then return nil, 'bad content-length' end
    discard_body(sc, length)
  end
  local connection = (headers.connection or ''):lower()
  local keep_alive
  if minor == '1' then
    keep_alive = connection ~= 'close'
  else
    keep_alive = connection == 'keep-alive'
  end
  respond(sock, '200 OK', method == 'HEAD' and '' or BODY, keep_alive)
  return keep_alive
end

-- Answers 400 and closes. The client may still be sending: stop writing,
-- then read (up to 64 KiB) until it closes, so that closing with unread
-- data, which resets the connection, cannot destroy the answer in flight.
local function reject(sock, reason)
  if not pcall(respond, sock, '400 Bad Request', reason .. '\n', false) then return end
  pcall(sock.shutdown, sock, 'send')
  local chunk, left = byte_span.new(4096), 65536
  while left > 0 do
    local ok, n = pcall(sock.read_some, sock, chunk)
    if not ok then return end
    left = left - n
  end
end

local function serve(sock)
  local sc = stream.scanner.new{
    stream = sock, record_separator = '\r\n', max_record_size = MAX_LINE,
  }
  while true do
    local ok, keep, reason = pcall(serve_request, sock, sc)
    if not ok then
      if keep == generic_error.EMSGSIZE then reject(sock, 'line too long') end
      break -- else EOF or a reset: the client is gone
    end
    if keep == nil then
      reject(sock, reason)
      break
    end
    if not keep then break end
  end
  sock:close()
end

local acceptor = ip.tcp.acceptor.new()
acceptor:open('v4')
acceptor:set_option('reuse_address', true)
acceptor:bind('127.0.0.1', port)
acceptor:listen()
print('listening on ' .. ip.tostring(acceptor.local_address, acceptor.local_port))

while true do
  local sock = acceptor:accept()
  spawn(serve, sock):detach()
end
