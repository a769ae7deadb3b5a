-- A sandboxed actor's table has room for 32 received descriptors: one
-- more is a clear error to the sender and leaves nothing behind; closing
-- the received file_descriptors, or letting them be collected, frees
-- their slots. Directories are refused; a send interrupted before its
-- frame left takes its installed descriptors back out.
local inbox = require 'inbox'
local pipe = require 'pipe'
local file = require 'file'
local fs = require 'filesystem'
local ch = spawn_vm{ module = '/fixtures/fd_user', sandbox = {} }
local r, w = pipe.pair()
local fd = r:release()
local function fds(n)
  local t = {}
  for i = 1, n do t[i] = fd end
  return t
end
local function keep(n)
  local ok, e = pcall(ch.send, ch, { op = 'keep', fds = fds(n), reply = inbox })
  if not ok then return 'refused: ' .. tostring(e) end
  return 'kept ' .. inbox:receive().kept
end

print('33 at once:', keep(33))
print('32 at once:', keep(32))
print('one more:', keep(1))
ch:send{ op = 'drop', how = 'close', reply = inbox }
print('dropped:', inbox:receive().dropped)
print('32 again:', keep(32))
ch:send{ op = 'drop', how = 'gc', reply = inbox }
print('dropped:', inbox:receive().dropped)
print('32 again:', keep(32))
ch:send{ op = 'drop', how = 'gc', reply = inbox }
print('dropped:', inbox:receive().dropped)

-- a directory
local dir = fs.temp_directory_path() / ('luring-sbx-dir-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local d = file.stream.new()
d:open(dir, file.open_flag.read_only)
print('directory:', pcall(ch.send, ch, { op = 'keep', fds = { d:release() }, reply = inbox }))
fs.remove_all(dir)

-- An interrupted send: a frame that never left takes its descriptor back
-- out of the sandbox's table. The sandbox stops reading; a fiber sends
-- one-fd messages (each ~60 KB, so the socket fills after a few) until
-- it is interrupted. Whichever send was cut short, exactly the ones that
-- completed hold slots: 32 minus those fit afterwards, and no more.
local gate_r, gate_w = pipe.pair()
ch:send{ op = 'stall', gate = gate_r:release(), reply = inbox }
local pad = string.rep('x', 60000)
local sent = 0
local sender = spawn(function()
  while true do
    ch:send{ op = 'keep', fds = { fd }, pad = pad, reply = inbox }
    sent = sent + 1
  end
end)
-- Until the socket is full: the sender stops making progress.
local time = require 'time'
local seen = -1
while sent ~= seen do
  seen = sent
  time.sleep(0.05)
end
sender:interrupt()
print('sender:', pcall(sender.join, sender))
gate_w:write_some('go')
print('stalled:', inbox:receive().stalled)
for _ = 1, sent do inbox:receive() end
print('the rest fits:', keep(32 - sent))
print('no more:', keep(1))
ch:close()
