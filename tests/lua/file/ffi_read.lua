-- Direct reads through LuaJIT's FFI (lua/io_object.lua IO.run_fast,
-- src/modules/fast_io.rs read_direct_ffi): from the second read_some of
-- a file.stream into one buffer, cached file data is read through an FFI
-- function pointer on the object's fast handle. The handle holds its own
-- copy of the descriptor, so no path reads another file after the object
-- closed, released or lost its descriptor and the number was reused;
-- reads in user coroutines, finalizers and two fibers in turn keep their
-- semantics; and user code sees nothing of the ffi library.
local file = require 'file'
local fs = require 'filesystem'
local inbox = require 'inbox'
local F = file.open_flag

-- Open fds, without eventfds (as tests/lua/file/open_fds.lua counts them;
-- a copy: this script also runs as a leaf module in its workers).
local function fds()
  local n = 0
  for e in fs.directory_iterator('/proc/self/fd') do
    local ok, target = pcall(fs.read_symlink, e.path)
    if ok and tostring(target) ~= 'anon_inode:[eventfd]' then n = n + 1 end
  end
  return n
end

if _CONTEXT == 'worker' then
  -- reads 4 bytes through the descriptor it was sent, at its position
  local m = inbox:receive()
  local s = file.stream.new(m.fd)
  local buf = byte_span.new(4)
  local n = s:read_some(buf)
  n = n + s:read_some(buf:slice(n + 1))
  s:close()
  m.back:send(tostring(buf:slice(1, n)))
  return
end

local function outcome(label, f, ...)
  local ok, e = pcall(f, ...)
  if ok then print(label, 'ok', e) return end
  print(label, tostring(e.category), tostring(e))
end

local dir = fs.temp_directory_path() / ('luring-ffi-' .. tostring({}):match('0x(%x+)'))
fs.create_directory(dir)
local function make(name, text)
  local w = file.stream.new()
  w:open(dir / name, bit.bor(F.write_only, F.create, F.truncate))
  w:write_some(text)
  w:close()
  return dir / name
end
local a = make('a', 'AAAAaaaaAAAAaaaaAAAAaaaa')
local b = make('b', 'BBBBbbbbBBBBbbbbBBBBbbbb')
local before = fds()
local buf = byte_span.new(4)
local function read(s)
  local n = s:read_some(buf)
  return tostring(buf:slice(1, n))
end
local function opened(path)
  local s = file.stream.new()
  s:open(path, F.read_only)
  return s
end

-- close(), then another file opened (its descriptor likely takes the
-- closed one's number): the closed object is EBADF, never the other file.
local s = opened(a)
print('a reads', read(s), read(s), read(s))
s:close()
local t = opened(b)
outcome('read after close:', s.read_some, s, buf)
print('b reads', read(t), read(t))
s:open(a, F.read_only)
print('a reopened reads', read(s), read(s))
t:close()

-- release(): the object is EBADF; a file opened meanwhile is not read
-- through it; the descriptor, assigned back, reads on at its position;
-- another file's descriptor assigned reads that file.
local fd = s:release()
t = opened(b)
outcome('read after release:', s.read_some, s, buf)
s:assign(fd)
print('assigned back reads', read(s), read(s))
local r = opened(b)
print('b reads', read(r))
local fd_b = r:release()
s:close()
s:assign(fd_b)
print('b assigned reads', read(s), read(s))
s:close()
t:close()

-- The descriptor moved to another actor: the sender's object is EBADF,
-- the receiver reads at the position the sender left.
s = opened(a)
print('a reads', read(s), read(s))
local worker = spawn_vm('.')
worker:send({ fd = s:release(), back = inbox })
outcome('read after the move:', s.read_some, s, buf)
print('the other actor reads', inbox:receive())
r = opened(b)
outcome('still EBADF with b open:', s.read_some, s, buf)
r:close()

-- An object collected while open: its descriptor is closed, and a new
-- object reads its own file.
s = opened(a)
print('a reads', read(s), read(s))
s = nil
collectgarbage() collectgarbage()
s = opened(b)
print('b reads', read(s), read(s))
s:close()

-- Another buffer, and a slice of the cached one (another userdata): each
-- gets its own bytes.
s = opened(a)
read(s) read(s)
local other = byte_span.new(6)
local n = s:read_some(other)
print('another buffer', tostring(other:slice(1, n)), 'then the first', read(s))
n = s:read_some(buf:slice(2, 3))
print('a slice', n, tostring(buf))

-- In a user coroutine (and in one nested in it): same data; in a sort
-- comparator inside a coroutine: refused before anything is read.
s:seek(0, 'set')
local co = coroutine.wrap(function()
  local x = read(s)
  local inner = coroutine.wrap(function() return read(s) end)
  return x, inner()
end)
print('in coroutines', co())
local ok, e = coroutine.wrap(function()
  return pcall(table.sort, { 1, 2 }, function() s:read_some(buf) return false end)
end)()
print('in a comparator in a coroutine:', ok, (tostring(e):gsub(':.*', '')), 'position', s:seek(0, 'cur'))

-- In a finalizer: the fiber cannot suspend there, so read_some refuses
-- (the position does not move).
local in_gc
do
  local p = newproxy(true)
  getmetatable(p).__gc = function()
    local ok2, e2 = pcall(s.read_some, s, buf)
    in_gc = tostring(ok2) .. ' ' .. tostring(e2):gsub(':.*', '')
  end
end
collectgarbage() collectgarbage()
print('in a finalizer:', in_gc, 'position', s:seek(0, 'cur'))

-- In a finalizer that an allocation started (not collectgarbage): refused
-- the same way.
in_gc = nil
do
  local p = newproxy(true)
  getmetatable(p).__gc = function()
    local ok2, e2 = pcall(s.read_some, s, buf)
    in_gc = tostring(ok2) .. ' ' .. tostring(e2):gsub(':.*', '')
  end
end
local junk = {}
for i = 1, 200000 do
  if in_gc then break end
  junk[i % 100 + 1] = { i }
end
print('in a finalizer run by an allocation:', in_gc, 'position', s:seek(0, 'cur'))

-- With the collector stopped (as during a finalizer), reads still work.
collectgarbage('stop')
print('collector stopped', read(s), read(s))
collectgarbage('restart')
print('collector restarted', read(s))

-- Two fibers reading their own streams in turn (the direct read's
-- per-thread cache switches between them).
local x, y = opened(a), opened(b)
local got = {}
local function reader(st, tag)
  return spawn(function()
    local mine = byte_span.new(4)
    for _ = 1, 3 do
      local m = st:read_some(mine)
      got[#got + 1] = tag .. tostring(mine:slice(1, m))
      this_fiber.yield()
    end
  end)
end
local f1, f2 = reader(x, '1:'), reader(y, '2:')
f1:join() f2:join()
table.sort(got)
print('two fibers', table.concat(got, ' '))
x:close() y:close()
s:close()

-- Nothing of the ffi library in user code's reach after direct reads;
-- int64 literals (which LuaJIT's lexer always accepts) still work.
print('globals', ffi, jit, rawget(_G, 'ffi'), debug)
outcome('require ffi:', require, 'ffi')
print('metatable', getmetatable(t), next(t))
print('int64 literals', 1LL + 1, type(2ULL), load('return 3LL')())
for k, v in pairs(_G) do
  if type(v) == 'cdata' then print('cdata global', k) end
end

collectgarbage() collectgarbage()
print('fds left over', fds() - before)
fs.remove_all(dir)
