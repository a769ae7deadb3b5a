-- The file module inside a sandbox: a path granted read-only can be
-- opened and read; nothing else is reachable (no such file in the
-- sandbox's root, or Landlock's refusal); a read-only grant cannot be
-- written; a path granted read-write can be created and written; a
-- FIFO opens without waiting for a peer.
local inbox = require 'inbox'
local filesystem = require 'filesystem'
local dir = tostring(filesystem.current_working_directory()) .. '/fixtures/granted'
-- A fresh directory anyone may write (the sandbox of a root host runs
-- as uid 65534).
local rw
for n = 1, 1000 do
  local p = tostring(filesystem.temp_directory_path()) .. '/luring-sbx-rw-' .. n
  -- only a directory this run made itself (create_directory answers
  -- false for one that was there: another run's, maybe in use)
  local ok, made = pcall(filesystem.create_directory, p)
  if ok and made then
    rw = p
    break
  end
end
filesystem.chmod(rw, 511)
local function run(sandbox, req)
  local ch = spawn_vm{ module = '/fixtures/files', sandbox = sandbox }
  req.reply = inbox
  ch:send(req)
  for _, line in ipairs(inbox:receive().lines) do
    for _, d in ipairs{ { dir, '<ro>' }, { rw, '<rw>' } } do
      local i = line:find(d[1], 1, true)
      if i then line = line:sub(1, i - 1) .. d[2] .. line:sub(i + #d[1]) end
    end
    print(line)
  end
end
run({ read_only = { dir } }, {
  read = { dir .. '/data.txt', dir .. '/missing', '/etc/passwd', '/proc/self/status' },
  write = { dir .. '/data.txt', dir .. '/new.txt' },
})
print('-- file grant')
run({ read_only = { dir .. '/data.txt' } }, { read = { dir .. '/data.txt' } })
print('-- nothing granted')
run({}, { read = { dir .. '/data.txt', '/' } })
print('-- read-write grant')
filesystem.mkfifo(rw .. '/fifo', 438)
filesystem.chmod(rw .. '/fifo', 438)
run({ read_write = { rw }, read_only = { dir } }, {
  write = { rw .. '/new.txt', dir .. '/new.txt' },
  read = { rw .. '/new.txt' },
  fifo = rw .. '/fifo',
})
local file = require 'file'
local f = file.stream.new()
f:open(rw .. '/new.txt', file.open_flag.read_only)
local buf = byte_span.new(100)
print('host reads', (tostring(buf:slice(1, f:read_some(buf))):gsub('\n', '')))
f:close()
filesystem.remove_all(rw)
