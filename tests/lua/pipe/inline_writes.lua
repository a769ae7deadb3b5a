-- Writes that complete during their own submission (room in the pipe or
-- socket buffer) hand their result straight back to the writer
-- (lua/io_object.lua IO.run_op_inline); once the buffer is full they wait
-- as before. Mixed, they neither reorder nor lose bytes: a writer fiber
-- sends 600 numbered 1 KiB chunks, more than a pipe (64 KiB) or socket
-- buffer holds, while a reader fiber checks every byte in order.
local pipe = require 'pipe'
local unix = require 'unix'

local CHUNKS, SIZE = 600, 1024

local function chunk_byte(i, j) return (i * 7 + j) % 256 end

local function transfer(label, r, w)
  local writer = spawn(function()
    local buf = byte_span.new(SIZE)
    for i = 1, CHUNKS do
      for j = 1, SIZE do buf[j] = chunk_byte(i, j) end
      local done = 0
      while done < SIZE do done = done + w:write_some(buf:slice(done + 1)) end
    end
    w:close()
  end)
  local buf = byte_span.new(4096)
  local pos, bad = 0, nil
  while true do
    local ok, n = pcall(r.read_some, r, buf)
    if not ok then break end
    for k = 1, n do
      local i, j = math.floor(pos / SIZE) + 1, pos % SIZE + 1
      if buf[k] ~= chunk_byte(i, j) and not bad then bad = pos end
      pos = pos + 1
    end
  end
  writer:join()
  print(label, 'bytes', pos, 'expected', CHUNKS * SIZE, 'first bad byte', bad)
end

transfer('pipe', pipe.pair())
local a, b = unix.stream_socket.pair()
transfer('unix stream', a, b)
a:close()

-- A writer alone (nothing else ready) fills a pipe with inline writes,
-- then its reader gets it all back in order.
local r, w = pipe.pair()
local total, expected = 0, {}
for i = 1, 32 do
  local piece = string.rep(string.char(65 + i % 26), 1024)
  expected[i] = piece
  total = total + w:write_some(piece)
end
w:close()
local got = {}
local buf = byte_span.new(65536)
while true do
  local ok, n = pcall(r.read_some, r, buf)
  if not ok then break end
  got[#got + 1] = tostring(buf:slice(1, n))
end
local s = table.concat(got)
print('alone: written', total, 'read', #s, 'in order', s == table.concat(expected))
