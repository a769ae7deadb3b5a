-- Copies SRC to DST (created, or truncated if it exists) through a 64 KiB
-- buffer: every open, read and write is an io_uring op, and the fiber
-- simply suspends until each completes.
--
--   luring examples/copy_file.lua SRC DST
local system = require 'system'
local file = require 'file'
local stream = require 'stream'
local F = file.open_flag

local src_path, dst_path = system.arguments[3], system.arguments[4]
if not src_path or not dst_path or system.arguments[5] then
  print('usage: luring copy_file.lua SRC DST')
  system.exit(2)
end

local function open(path, flags, what)
  local f = file.stream.new()
  local ok, e = pcall(f.open, f, path, flags)
  if not ok then
    print(string.format('copy_file: cannot open %s %s: %s', what, path, tostring(e)))
    system.exit(1)
  end
  return f
end

local src = open(src_path, F.read_only, 'source')
local dst = open(dst_path, bit.bor(F.write_only, F.create, F.truncate), 'destination')
local buf = byte_span.new(64 * 1024)
local total = 0
while true do
  local ok, n = pcall(src.read_some, src, buf)
  if not ok then
    -- The end of the file is the asio.misc error eof (code 2).
    if type(n) == 'table' and tostring(n.category) == 'asio.misc' and n.code == 2 then break end
    print('copy_file: read failed: ' .. tostring(n))
    system.exit(1)
  end
  stream.write_all(dst, buf:slice(1, n))
  total = total + n
end
src:close()
dst:close()
print(string.format('copied %d bytes', total))
