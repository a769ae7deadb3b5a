-- file_descriptor: metatable name, tostring, dup, close, errors
local pipe = require 'pipe'
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok' end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end

local r, w = pipe.pair()
local fd = r:release()
print('metatable:', getmetatable(fd), type(fd))
print('tostring:', tostring(fd):match('^/dev/fd/%d+$') ~= nil)
print('no constructor:', file_descriptor, pcall(require, 'file_descriptor'))

-- dup: a new close-on-exec descriptor for the same pipe
local copy = fd:dup()
print('dup is new:', getmetatable(copy), tostring(copy) ~= tostring(fd))
print('close:', try(fd.close, fd))
print('after close:', tostring(fd))
print('close again:', try(fd.close, fd))
print('dup closed:', try(fd.dup, fd))
print('cap_get:', try(copy.cap_get, copy))
print('cap_set:', try(copy.cap_set, copy, {}))
print('close non-fd:', try(copy.close, {}))
print('dup non-fd:', try(copy.dup, 'x'))
print('close nothing:', try(copy.close))
print('unknown key:', try(function() return copy.nope end))
print('set field:', try(function() copy.close = nil end))
print('metatable locked:', getmetatable(copy), try(setmetatable, copy, {}))

-- the duplicate still reads what the write end writes
local r2 = pipe.read_stream.new(copy)
print('consumed:', tostring(copy), try(copy.dup, copy))
w:write_some('via dup')
local buf = byte_span.new(16)
local n = r2:read_some(buf)
print('read:', tostring(buf:slice(1, n)))
