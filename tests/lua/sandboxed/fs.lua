-- The filesystem module inside a sandbox works on granted paths (its
-- calls run there as plain syscalls); the calls the sandbox's seccomp
-- policy does not allow (chmod by path, chown, mknod/mkfifo, setting
-- times) are refused with EPERM; nothing outside the grants is visible.
local inbox = require 'inbox'
local filesystem = require 'filesystem'
local rw
for n = 1, 1000 do
  local p = tostring(filesystem.temp_directory_path()) .. '/luring-sbx-fs-' .. n
  -- only a directory this run made itself (create_directory answers
  -- false for one that was there: another run's, maybe in use)
  local ok, made = pcall(filesystem.create_directory, p)
  if ok and made then
    rw = p
    break
  end
end
filesystem.chmod(rw, 511)
local ch = spawn_vm{ module = '/fixtures/fs', sandbox = { read_write = { rw } }, monitor = true }
ch:send{ dir = rw, reply = inbox }
local reply = inbox:receive()
for _, line in ipairs(reply.lines) do
  local i = line:find(rw, 1, true)
  if i then line = line:sub(1, i - 1) .. '<rw>' .. line:sub(i + #rw) end
  print(line)
end
print('ended', inbox:receive().reason)
filesystem.remove_all(rw)
