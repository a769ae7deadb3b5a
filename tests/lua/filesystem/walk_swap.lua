-- recursive_directory_iterator against a tree changed under it: each
-- subdirectory is opened relative to its parent's descriptor, so a
-- directory swapped for a symlink after it was listed is refused (ENOTDIR)
-- and a parent renamed away does not send the walk through a symlink put
-- in its place; no descriptor is left open afterwards
local fs = require 'filesystem'
local file = require 'file'
local function touch(p)
  local f = file.stream.new()
  f:open(p, bit.bor(file.open_flag.write_only, file.open_flag.create))
  f:close()
end
local time = require 'time'
local function open_fds()
  collectgarbage()
  collectgarbage()
  local n = 0
  for _ in fs.directory_iterator('/proc/self/fd') do n = n + 1 end
  return n
end
-- A closed object's fd goes when its close completes: count until two
-- counts agree (or until `target` is reached), with a generous deadline.
local function settled_fds(target)
  local deadline = time.steady_clock.now() + 30
  local last = open_fds()
  while last ~= target and time.steady_clock.now() < deadline do
    time.sleep(0.01)
    local n = open_fds()
    if target == nil and n == last then break end
    last = n
  end
  return last
end
local base = fs.temp_directory_path() / ('luring-swap-' .. tostring({}):match('0x(%x+)'))
local tree, outside = base / 'tree', base / 'outside'
fs.create_directories(tree / 'a')
touch(tree / 'a/inner')
fs.create_directories(outside / 'q')
touch(outside / 'secret')
touch(outside / 'q/decoy')
local fds_before = settled_fds()
local function rel(p) return tostring(p:lexically_relative(tree)) end

-- 1. 'a' is listed as a directory, then replaced by a symlink to outside/
-- before the walk enters it
for _, follow in ipairs{ false, true } do
  local seen = {}
  local ok, err = pcall(function()
    for e in fs.recursive_directory_iterator(tree, { follow_directory_symlink = follow }) do
      seen[#seen + 1] = rel(e.path)
      if rel(e.path) == 'a' then
        fs.rename(tree / 'a', tree / 'a_real')
        fs.create_directory_symlink(outside, tree / 'a')
      end
    end
  end)
  print('follow=' .. tostring(follow), 'seen:', table.concat(seen, ' '))
  print('  walk ended with:', ok and 'no error' or (tostring(err.category) .. ': ' .. tostring(err)))
  fs.remove(tree / 'a')
  fs.rename(tree / 'a_real', tree / 'a')
end

-- 2. the parent 'p' is renamed away while the walk is inside it and a
-- symlink to outside/ (which has a 'q' of its own) takes its name
fs.create_directories(tree / 'p/q')
touch(tree / 'p/q/z')
local seen = {}
for e in fs.recursive_directory_iterator(tree) do
  local r = rel(e.path)
  seen[#seen + 1] = r
  if r == 'p/q' then
    fs.rename(tree / 'p', tree / 'p_moved')
    fs.create_directory_symlink(outside, tree / 'p')
  end
end
table.sort(seen)
print('parent swapped, seen:', table.concat(seen, ' '))

print('descriptors left open:', settled_fds(fds_before) - fds_before)
fs.remove_all(base)
