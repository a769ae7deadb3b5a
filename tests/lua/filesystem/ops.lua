-- the asynchronous file system calls, in a fresh temporary directory
local fs = require 'filesystem'
local file = require 'file'
local stream = require 'stream'
local F = file.open_flag
local tmp = fs.temp_directory_path()
print('temp is absolute:', tmp.is_absolute, fs.is_directory(tmp))
local dir = tmp / ('luring-fs-' .. tostring({}):match('0x(%x+)'))
local function rel(p) return tostring(fs.path.new(tostring(p)):lexically_relative(dir)) end
local function write(p, s)
  local f = file.stream.new()
  f:open(p, bit.bor(F.write_only, F.create, F.truncate))
  stream.write_all(f, s)
  f:close()
end
local function read(p)
  local f = file.random_access.new()
  f:open(p, F.read_only)
  local buf = byte_span.new(f:size())
  file.read_all_at(f, 0, buf)
  f:close()
  return tostring(buf)
end
local function listing(iter, ...)
  local out = {}
  for e in iter(...) do out[#out + 1] = rel(e.path) .. ':' .. e.type .. ':' .. e.depth end
  table.sort(out)
  return table.concat(out, ' ')
end

print('create_directory:', fs.create_directory(dir), fs.create_directory(dir))
print('create_directories:', fs.create_directories(dir / 'a/b/c'), fs.create_directories(dir / 'a/b'))
write(dir / 'a/f.txt', 'twelve bytes')
local st = fs.status(dir / 'a/f.txt')
print('status:', getmetatable(st), st.type, fs.status(dir / 'a').type, fs.status(dir / 'nope').type)
print('file_size:', fs.file_size(dir / 'a/f.txt'), 'exists:', fs.exists(dir / 'a/f.txt'), fs.exists(dir / 'nope'))
print('predicates:', fs.is_regular_file(dir / 'a/f.txt'), fs.is_directory(dir / 'a'),
      fs.is_symlink(dir / 'a'), fs.is_fifo(dir / 'a'), fs.is_other(dir / 'a/f.txt'),
      fs.is_block_file(dir / 'a'), fs.is_character_file('/dev/null'), fs.is_socket(dir / 'a'))
print('is_empty:', fs.is_empty(dir / 'a/b/c'), fs.is_empty(dir / 'a'), fs.is_empty(dir / 'a/f.txt'))

fs.create_symlink('f.txt', dir / 'a/link')
fs.create_directory_symlink('b', dir / 'a/dirlink')
print('symlink:', fs.is_symlink(dir / 'a/link'), fs.symlink_status(dir / 'a/link').type,
      fs.status(dir / 'a/link').type, tostring(fs.read_symlink(dir / 'a/link')))
print('equivalent:', fs.equivalent(dir / 'a/link', dir / 'a/f.txt'), fs.equivalent(dir / 'a', dir / 'a/f.txt'))
fs.create_hard_link(dir / 'a/f.txt', dir / 'a/hard')
print('hard links:', fs.hard_link_count(dir / 'a/f.txt'), fs.equivalent(dir / 'a/hard', dir / 'a/f.txt'))

print('canonical:', rel(fs.canonical(dir / 'a/b/../link')))
print('weakly_canonical:', rel(fs.weakly_canonical(dir / 'a/dirlink/x/../y/z')))
print('relative:', tostring(fs.relative(dir / 'a/b/c', dir / 'a/dirlink')),
      'proximate:', tostring(fs.proximate(dir / 'a/f.txt', dir / 'a/b')))
print('absolute:', tostring(fs.absolute('/x/y')), fs.absolute('x').is_absolute,
      fs.absolute('x') == fs.current_working_directory() / 'x')

fs.chmod(dir / 'a/f.txt', fs.mode(6, 4, 0))
print('chmod:', string.format('%o', fs.status(dir / 'a/f.txt').mode), string.format('%o', fs.mode(7, 5, 1)))
fs.last_write_time(dir / 'a/f.txt', 1000000000.5)
print('last_write_time:', fs.last_write_time(dir / 'a/f.txt').seconds_since_epoch)
fs.resize_file(dir / 'a/f.txt', 3)
print('resize_file:', fs.file_size(dir / 'a/f.txt'), read(dir / 'a/f.txt'))

print('copy_file:', fs.copy_file(dir / 'a/f.txt', dir / 'g.txt'), read(dir / 'g.txt'),
      string.format('%o', fs.status(dir / 'g.txt').mode))
write(dir / 'a/f.txt', 'new')
print('skip_existing:', fs.copy_file(dir / 'a/f.txt', dir / 'g.txt', 'skip_existing'), read(dir / 'g.txt'))
print('overwrite_existing:', fs.copy_file(dir / 'a/f.txt', dir / 'g.txt', { overwrite_existing = true }), read(dir / 'g.txt'))
fs.last_write_time(dir / 'g.txt', 2000000000)
print('update_existing (older source):', fs.copy_file(dir / 'a/f.txt', dir / 'g.txt', 'update_existing'))

fs.copy(dir / 'a', dir / 'copy')
print('copy (files only):', listing(fs.directory_iterator, dir / 'copy'))
fs.copy(dir / 'a', dir / 'rcopy', { recursive = true, copy_symlinks = true })
print('copy recursive:', listing(fs.recursive_directory_iterator, dir / 'rcopy'))
print('iterate:', listing(fs.directory_iterator, dir / 'a'))
print('recursive:', listing(fs.recursive_directory_iterator, dir / 'a'))
print('follow symlinks:', listing(fs.recursive_directory_iterator, dir / 'a', { follow_directory_symlink = true }))

fs.rename(dir / 'g.txt', dir / 'h.txt')
print('rename:', fs.exists(dir / 'g.txt'), read(dir / 'h.txt'))
print('remove:', fs.remove(dir / 'h.txt'), fs.remove(dir / 'h.txt'), fs.remove(dir / 'a/b/c'))
fs.mkfifo(dir / 'fifo', fs.mode(6, 0, 0))
print('mkfifo:', fs.is_fifo(dir / 'fifo'), fs.is_other(dir / 'fifo'))
local sp = fs.space(dir)
print('space:', sp.capacity > 0, sp.free <= sp.capacity, sp.available <= sp.free)

local old = fs.umask(tonumber('077', 8))
print('umask:', string.format('%o', fs.umask(old)))
local cwd = fs.current_working_directory()
fs.current_working_directory(dir)
print('chdir:', fs.current_working_directory() == fs.canonical(dir), fs.exists('fifo'))
fs.current_working_directory(cwd)
print('back:', fs.current_working_directory() == cwd)

-- remove_all removes symlinks, never what they point to
fs.create_directories(dir / 'outside')
write(dir / 'outside/keep', 'kept')
fs.create_directories(dir / 'tree/sub')
fs.create_directory_symlink('../../outside', dir / 'tree/sub/link')
print('remove_all tree:', fs.remove_all(dir / 'tree'), fs.exists(dir / 'tree'), read(dir / 'outside/keep'))
print('remove_all a file:', fs.remove_all(dir / 'outside/keep'))

print('remove_all:', fs.remove_all(dir), fs.exists(dir), fs.remove_all(dir))
