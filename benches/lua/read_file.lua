-- Reads FILE (first argument) to its end with file.stream in 64 KiB chunks
-- (or the size of the optional second argument, for a per-read cost),
-- one buffer reused for every read, and prints the byte count. The harness
-- (benches/file_read.rs) times the whole process against `cat FILE`.
local file = require 'file'
local arguments = require('system').arguments
local path = arguments[3]
local chunk = tonumber(arguments[4]) or 65536

local stream = file.stream.new()
stream:open(path, file.open_flag.read_only)
local buf = byte_span.new(chunk)
local read_some = stream.read_some
local total = 0
while true do
  local ok, n = pcall(read_some, stream, buf)
  if not ok then
    local e = n
    -- End of file is asio.misc code 2; anything else is a real failure.
    if type(e) == 'table' and tostring(e.category) == 'asio.misc' and e.code == 2 then
      break
    end
    error(e, 0)
  end
  total = total + n
end
stream:close()
print('bytes', total)
