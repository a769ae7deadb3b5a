-- fs.copy beneath the top never goes through a symlink it did not choose
-- to follow: a destination entry or directory that is a symlink is refused
-- (not written through), source symlinks are copied, skipped or followed
-- as the options say, and copying again over an existing tree works
local fs = require 'filesystem'
local file = require 'file'
local function write(p, text)
  local f = file.stream.new()
  f:open(p, bit.bor(file.open_flag.write_only, file.open_flag.create, file.open_flag.truncate))
  local s = byte_span.append(text)
  f:write_some(s)
  f:close()
end
local function read(p)
  local f = file.stream.new()
  f:open(p, file.open_flag.read_only)
  local buf = byte_span.new(100)
  local ok, n = pcall(f.read_some, f, buf)
  f:close()
  return ok and tostring(buf:slice(1, n)) or ''
end
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok' end
  return tostring(e.category) .. ': ' .. tostring(e)
end
local function listing(p)
  local t = {}
  for e in fs.recursive_directory_iterator(p) do
    t[#t + 1] = tostring(e.path:lexically_relative(p)) .. ':' .. e.type
  end
  table.sort(t)
  return table.concat(t, ' ')
end
local base = fs.temp_directory_path() / ('luring-copy-' .. tostring({}):match('0x(%x+)'))
local src, outside = base / 'src', base / 'outside'
fs.create_directories(src / 'sub')
fs.create_directories(outside)
write(src / 'x', 'x from src')
write(src / 'sub/y', 'y from src')
fs.create_symlink('x', src / 'link_to_x')
fs.create_directory_symlink(outside, src / 'link_to_outside')
write(outside / 'secret', 'outside')

-- the three symlink modes
fs.copy(src, base / 'kept', { recursive = true, copy_symlinks = true })
print('copy_symlinks:', listing(base / 'kept'))
print('  link target kept:', tostring(fs.read_symlink(base / 'kept/link_to_x')))
fs.copy(src, base / 'skipped', { recursive = true, skip_symlinks = true })
print('skip_symlinks:', listing(base / 'skipped'))
fs.copy(src, base / 'followed', { recursive = true })
print('followed:', listing(base / 'followed'))
print('  content through the link:', read(base / 'followed/link_to_outside/secret'))

-- again over the existing tree
print('again, overwrite:', try(fs.copy, src, base / 'kept',
  { recursive = true, overwrite_existing = true, skip_symlinks = true }))
print('again, default:', try(fs.copy, src, base / 'skipped', { recursive = true, skip_symlinks = true }))

-- a destination file that is a symlink out of the tree
local dst = base / 'dst'
fs.create_directories(dst)
write(outside / 'target', 'untouched')
fs.create_symlink(outside / 'target', dst / 'x')
print('dst entry is a symlink:', try(fs.copy, src, dst, { overwrite_existing = true, skip_symlinks = true }))
print('  outside/target:', read(outside / 'target'))

-- a destination directory that is a symlink out of the tree
local dst2 = base / 'dst2'
fs.create_directories(dst2)
fs.create_directory_symlink(outside, dst2 / 'sub')
print('dst dir is a symlink:', try(fs.copy, src, dst2, { recursive = true, skip_symlinks = true }))
print('  outside has y:', fs.exists(outside / 'y'))

-- the top is the caller's path: a file copied onto a symlink named by the caller follows it
write(outside / 'top', 'old')
fs.create_symlink(outside / 'top', base / 'top_link')
fs.copy(src / 'x', base / 'top_link', { overwrite_existing = true })
print('top symlink followed:', read(outside / 'top'))
fs.remove_all(base)
