-- An int64 literal in a chunk makes LuaJIT's lexer open its ffi library
-- before any direct read of a file.stream does (lua/io_object.lua,
-- src/modules/fast_io.rs load_ffi): the direct reads then take that
-- opening rather than make a second one, and both keep working.
local n = 5LL
local file = require 'file'
local fs = require 'filesystem'
local F = file.open_flag
local path = fs.temp_directory_path() / ('luring-int64-' .. tostring({}):match('0x(%x+)'))
local w = file.stream.new()
w:open(path, bit.bor(F.write_only, F.create, F.truncate))
w:write_some('0123456789')
w:close()
local s = file.stream.new()
s:open(path, F.read_only)
local buf = byte_span.new(3)
local parts = {}
for _ = 1, 3 do parts[#parts + 1] = tostring(buf:slice(1, s:read_some(buf))) end
print('reads', table.concat(parts, ' '))
print('int64', n * 2, type(n), load('return 7ULL')(), ffi)
s:close()
fs.remove(path)
