-- file_descriptor objects in messages, to an actor on the same thread and
-- to one on another thread: the receiver gets a usable copy (it writes and
-- reads through it), the sender keeps its own; a closed or emptied one is
-- EBUSY at the top of a message and left out inside a table (spec/actors.md)
local inbox = require 'inbox'
local pipe = require 'pipe'
local function read_text(r)
  local buf = byte_span.new(64)
  local n = r:read_some(buf)
  return tostring(buf:slice(1, n))
end
if _CONTEXT == 'worker' then
  -- prints nothing: its report travels back in the reply, so the output
  -- order does not depend on the threads' timing
  local m = inbox:receive()
  local got = getmetatable(m.w) .. ' ' .. getmetatable(m.r)
  local w = pipe.write_stream.new(m.w)
  local wrote = w:write_some('from ' .. m.name)
  w:close()
  local r = pipe.read_stream.new(m.r)
  m.back:send({ got = got, wrote = wrote, read = read_text(r) })
  return
end

local function exchange(name, worker)
  local r1, w1 = pipe.pair()
  local r2, w2 = pipe.pair()
  local wfd, rfd = w1:release(), r2:release()
  worker:send({ name = name, w = wfd, r = rfd, back = inbox })
  -- the sender's objects still own their descriptors
  print(name .. ': sender keeps', tostring(wfd):match('^/dev/fd/%d+$') ~= nil,
    tostring(rfd):match('^/dev/fd/%d+$') ~= nil)
  print(name .. ': main read', read_text(r1))
  local mine = pipe.write_stream.new(wfd)
  mine:write_some('and from main')
  print(name .. ': main read', read_text(r1))
  rfd:close()
  w2:write_some('to ' .. name)
  local report = inbox:receive()
  print(name .. ': worker got', report.got, 'wrote', report.wrote, 'read', report.read)
end

exchange('same thread', spawn_vm('.'))
exchange('other thread', spawn_vm({ module = '.', inherit_context = false }))

local json = require 'json'
local echo = spawn_vm({ module = '/workers/echo', inherit_context = false })
echo:send(inbox)
local r, w = pipe.pair()
local closed = r:release()
closed:close()
local function try_send(v)
  local ok, e = pcall(echo.send, echo, v)
  if ok then return 'sent' end
  return tostring(e.category) .. ': ' .. tostring(e)
end
print('closed:', try_send(closed))
local emptied = w:release()
pipe.write_stream.new(emptied)
print('emptied:', try_send(emptied))
print('closed, nested:', try_send({ 1, { x = 2, fd = closed }, closed, 4 }),
  json.encode(inbox:receive()))
print('channel still works:', try_send('after'), inbox:receive())
echo:close()
