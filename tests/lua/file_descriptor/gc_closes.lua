-- a file_descriptor nobody references is closed by the garbage collector:
-- the pipe then has no reader and a write fails with EPIPE
local pipe = require 'pipe'
local r, w = pipe.pair()
local fd = r:release()
r = nil
print('write with a reader:', w:write_some('x'))
fd = nil
collectgarbage()
collectgarbage()
local ok, e = pcall(w.write_some, w, 'y')
print('write without:', ok, tostring(e.category), tostring(e))

-- a dup keeps the pipe open after the original is collected
local r3, w3 = pipe.pair()
local original = r3:release()
local copy = original:dup()
original = nil
collectgarbage()
collectgarbage()
print('write with the dup alive:', w3:write_some('z'))
print(tostring(copy):match('^/dev/fd/%d+$') ~= nil)
