-- directories are listed in batches as the loop goes: every entry of a
-- directory larger than a batch comes exactly once, and a loop that stops
-- early leaves no open directory behind once its iterator is collected
local fs = require 'filesystem'
local file = require 'file'
local dir = fs.temp_directory_path() / ('luring-fs-' .. tostring({}):match('0x(%x+)'))
fs.create_directories(dir / 'sub')
local function fds()
  local n = 0
  for e in fs.directory_iterator('/proc/self/fd') do
    local ok, target = pcall(fs.read_symlink, e.path)
    if ok and tostring(target) ~= 'anon_inode:[eventfd]' then n = n + 1 end
  end
  return n
end
local N = 700
for i = 1, N do
  local f = file.stream.new()
  f:open(dir / ('f' .. i), bit.bor(file.open_flag.write_only, file.open_flag.create))
  f:close()
end
local seen, count = {}, 0
for e in fs.directory_iterator(dir) do
  local name = tostring(e.path.filename)
  assert(not seen[name], 'twice: ' .. name)
  seen[name] = true
  count = count + 1
end
print('entries (files and sub):', count)
count = 0
for e in fs.recursive_directory_iterator(dir.parent_path / dir.filename) do
  if e.depth == 0 then count = count + 1 end
end
print('recursive entries:', count)
local open_before = fds()
print('is_empty:', fs.is_empty(dir), fs.is_empty(dir / 'sub'))
print('is_empty closed its directory:', fds() - open_before)

collectgarbage()
local before = fds()
for _ = 1, 20 do
  for e in fs.directory_iterator(dir) do break end
end
collectgarbage()
collectgarbage()
print('directories left open:', fds() - before)
print('removed:', fs.remove_all(dir))
