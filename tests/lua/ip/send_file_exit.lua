-- exit: 3
-- A program that exits while a send_file waits for a peer that reads
-- nothing ends at once. (It hung: the VM's teardown closed the call's
-- pipe while the kernel's splice into the socket held the pipe's lock;
-- the splice now keeps both pipe ends until its completion.)
local ip = require 'ip'
local file = require 'file'
local fs = require 'filesystem'
local stream = require 'stream'
local system = require 'system'
local F = file.open_flag

local path = fs.temp_directory_path() / ('luring-send-file-exit-' .. tostring({}):match('0x(%x+)'))
local w = file.stream.new()
w:open(path, bit.bor(F.write_only, F.create, F.truncate))
stream.write_all(w, string.rep('x', 300000))
w:close()
local f = file.random_access.new()
f:open(path, F.read_only)
fs.remove(path)

local acc = ip.tcp.acceptor.new()
acc:open('v4')
acc:bind('127.0.0.1', 0)
acc:listen()
local c = ip.tcp.socket.new()
local accepted = spawn(function() return acc:accept() end)
c:connect('127.0.0.1', acc.local_port)
local s = accepted:join()
c:set_option('send_buffer_size', 4096)
s:set_option('receive_buffer_size', 4096)
spawn(function() c:send_file(f, 0, 300000) end):detach()
stream.read_all(s, byte_span.new(100))
print('exiting while send_file waits')
system.exit(3)
