-- Once a VM's sockets took the FFI path, its scheduler reads a turn's
-- completions from the completion array (src/actor/vm.rs
-- `write_completion_array`, lua/core/scheduler.lua `carr`): more
-- completions in one turn than the array holds (255 after the first),
-- and completions that carry an fd object (file opens) among plain ones
-- (pipe reads of distinct lengths), all reach their own fibers once,
-- with their own results.
local time = require 'time'
local pipe = require 'pipe'
local file = require 'file'
local fs = require 'filesystem'
local L = require './loopback' -- listener, tcp_pair
local c, s = L.tcp_pair(L.listener())
local buf = byte_span.new(4)
c:write_some('ping')
print('first read', s:read_some(buf)) -- binds the buffer: the FFI path from here
c:write_some('pong')
print('fast read', s:read_some(buf))

local dir = fs.temp_directory_path() / ('luring-carr-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local path = dir / 'data'
local w0 = file.stream.new()
w0:open(path, bit.bor(file.open_flag.write_only, file.open_flag.create))
w0:write_some('x')
w0:close()

local SLEEPERS, OPENERS, READERS = 400, 150, 150
local wrong, done = {}, 0
local function bad(what) wrong[#wrong + 1] = what end
local pipes = {}
for i = 1, READERS do
  local r, w = pipe.pair()
  w:write_some(string.rep('y', i)) -- reader i gets exactly i bytes
  pipes[i] = { r, w }
end

local fibers = {}
-- all wake from one timer deadline (one turn of 700 completions), then
-- each submits its op in the same batch (mixed completions)
for i = 1, SLEEPERS do
  fibers[#fibers + 1] = spawn(function()
    time.sleep(0.05)
    time.sleep(0.001)
    done = done + 1
  end)
end
for i = 1, OPENERS do
  fibers[#fibers + 1] = spawn(function()
    time.sleep(0.05)
    local f = file.stream.new()
    f:open(path, file.open_flag.read_only)
    if not f.is_open then bad('open ' .. i) end
    f:close()
    done = done + 1
  end)
end
for i = 1, READERS do
  fibers[#fibers + 1] = spawn(function()
    time.sleep(0.05)
    local b = byte_span.new(200)
    local n = pipes[i][1]:read_some(b)
    if n ~= i then bad('reader ' .. i .. ' got ' .. tostring(n)) end
    done = done + 1
  end)
end
for _, f in ipairs(fibers) do f:join() end
print('done', done, 'of', SLEEPERS + OPENERS + READERS, 'wrong', #wrong, wrong[1])
for i = 1, READERS do pipes[i][1]:close() pipes[i][2]:close() end
fs.remove_all(dir)

-- the socket still works on the FFI path afterwards
c:write_some('done')
print('last read', s:read_some(buf), tostring(buf))
