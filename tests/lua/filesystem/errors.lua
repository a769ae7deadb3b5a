-- the errors of the file system calls: the kernel's (system category) and
-- argument errors (generic EINVAL naming the argument). Runs as root in
-- CI, where permission bits do not stop anything: EACCES is exercised by
-- tests/filesystem_eacces.rs as an unprivileged user.
local fs = require 'filesystem'
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  local ok1, e1 = pcall(fs.umask, 18)
  local ok2, e2 = pcall(fs.current_working_directory, '/')
  back:send(table.concat({ tostring(ok1), tostring(e1), tostring(ok2), tostring(e2),
                           tostring(fs.current_working_directory() ~= nil) }, ' '))
  return
end
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok', e end
  if type(e) ~= 'table' then return 'error: ' .. tostring(e) end
  return tostring(e.category) .. ': ' .. tostring(e) .. (e.arg and (' (arg ' .. e.arg .. ')') or '')
end
local dir = fs.temp_directory_path() / ('luring-fs-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local missing, file_ = dir / 'missing', dir / 'file'
fs.create_directory(dir / 'sub')
fs.create_symlink('sub', dir / 'link')
do
  local f = require('file').stream.new()
  f:open(file_, bit.bor(require('file').open_flag.write_only, require('file').open_flag.create))
  f:close()
end

print('-- ENOENT')
for _, name in ipairs{ 'file_size', 'hard_link_count', 'last_write_time', 'canonical',
                       'read_symlink', 'is_empty', 'space' } do
  print(name, try(fs[name], missing))
end
print('rename', try(fs.rename, missing, dir / 'x'))
print('copy_file', try(fs.copy_file, missing, dir / 'x'))
print('copy', try(fs.copy, missing, dir / 'x'))
print('chmod', try(fs.chmod, missing, 0))
print('resize_file', try(fs.resize_file, missing, 0))
print('create_hard_link', try(fs.create_hard_link, missing, dir / 'x'))
print('equivalent', try(fs.equivalent, missing, file_))
print('directory_iterator', try(fs.directory_iterator, missing))
print('recursive_directory_iterator', try(fs.recursive_directory_iterator, missing))
print('create_directory (no parent)', try(fs.create_directory, missing / 'x'))
print('remove (not there)', try(fs.remove, missing))
print('remove_all (not there)', try(fs.remove_all, missing))
print('status (not there)', fs.status(missing).type, fs.symlink_status(missing).type)

print('-- ENOTDIR (a path through a regular file)')
print('status', fs.status(file_ / 'x').type)
print('create_directory', try(fs.create_directory, file_ / 'x'))
print('create_directories', try(fs.create_directories, file_ / 'x/y'))
print('directory_iterator', try(fs.directory_iterator, file_))
print('canonical', try(fs.canonical, file_ / 'x'))

print('-- EEXIST and friends')
print('create_directory on a file', try(fs.create_directory, file_))
print('create_symlink', try(fs.create_symlink, 'x', file_))
print('create_hard_link', try(fs.create_hard_link, file_, dir / 'sub'))
print('copy_file onto itself', try(fs.copy_file, file_, file_, 'overwrite_existing'))
print('copy_file existing', try(fs.copy_file, file_, dir / 'file'))
print('mkfifo existing', try(fs.mkfifo, file_, 0))
print('copy_file of a directory', try(fs.copy_file, dir / 'sub', dir / 'x'))
print('file_size of a directory', try(fs.file_size, dir / 'sub'))
print('read_symlink of a file', try(fs.read_symlink, file_))
fs.create_directory(dir / 'sub/inner')
print('remove non-empty directory', try(fs.remove, dir / 'sub'))
print('rename directory onto its child', try(fs.rename, dir / 'sub', dir / 'sub/inner/x'))

print('-- bad arguments')
print('NUL in path', try(fs.exists, 'a\0b'))
print('NUL in second path', try(fs.rename, file_, 'a\0b'))
print('path.new NUL', try(fs.path.new, 'a\0b'))
print('number path', try(fs.status, 42))
print('table path', try(fs.remove, {}))
print('nil path', try(fs.canonical))
print('second path missing', try(fs.copy_file, file_))
print('bad mode', try(fs.chmod, file_, 4096))
print('negative mode', try(fs.chmod, file_, -1))
print('fractional mode', try(fs.create_directory, dir / 'y', 1.5))
print('mode digits', try(fs.mode, 8, 0, 0), try(fs.mode, 7, 7, 'x'))
print('resize_file negative', try(fs.resize_file, file_, -1))
print('resize_file fractional', try(fs.resize_file, file_, 0.5))
print('last_write_time NaN', try(fs.last_write_time, file_, 0/0))
print('copy_file two options', try(fs.copy_file, file_, dir / 'z', { skip_existing = true, overwrite_existing = true }))
print('copy_file bad options', try(fs.copy_file, file_, dir / 'z', 42))
print('recursive options', try(fs.recursive_directory_iterator, dir, 'x'))
print('umask bad', try(fs.umask, 'x'))
print('chown uid not a number', try(fs.chown, file_, 'root', 0))
print('chown gid too big', try(fs.chown, file_, 0, 2^32))
print('chown missing', try(fs.chown, missing, 0, 0))
print('mknod unknown type bits', try(fs.mknod, dir / 'n', 0x10000000, 0))
print('mknod directory type', try(fs.mknod, dir / 'n', 16384 + 493, 0))
print('mknod existing', try(fs.mknod, file_, fs.file_type_bits.fifo + 384))
print('makedev negative', try(fs.makedev, -1, 0))

print('-- umask and the working directory belong to the master VM')
spawn_vm('.'):send(inbox)
print(inbox:receive())

fs.remove_all(dir)
