-- a stream nobody references is collected with its descriptor: the write
-- end then has no reader (EPIPE); a reader waiting in a fiber keeps its
-- stream (and so the pipe) alive until it gets data
local pipe = require 'pipe'
local r, w = pipe.pair()
print('with a reader:', w:write_some('x'))
r = nil
collectgarbage()
collectgarbage()
local ok, e = pcall(w.write_some, w, 'y')
print('reader collected:', ok, tostring(e))

local function start_reader(stream)
  return spawn(function()
    local buf = byte_span.new(4)
    local n = stream:read_some(buf)
    return tostring(buf:slice(1, n))
  end)
end
local r2, w2 = pipe.pair()
local f = start_reader(r2)
r2 = nil
this_fiber.yield()
collectgarbage()
collectgarbage()
print('waiting reader kept:', w2:write_some('data'))
print('it read:', f:join())
