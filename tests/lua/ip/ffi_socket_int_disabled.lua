-- A fiber waiting in a TCP read on the FFI fast path (K.await_op_solo)
-- with interruption disabled is not woken by interrupt(): the bytes end
-- its wait, and the interruption raises at its next interruption point
-- once it restores interruption. (The wait reads the fiber record's
-- int_disabled with rawget: absent from most records, present once
-- interruption was disabled.) With interruption enabled the same wait
-- ends with `interrupted`, and no byte is lost either way.
local L = require './loopback' -- outcome, listener, tcp_pair
local outcome = L.outcome
local acc = L.listener()
local c, s = L.tcp_pair(acc)
local buf = byte_span.new(16)
-- the first read binds the buffer: the next ones take the FFI path
c:write_some('one')
print('first read', tostring(buf:slice(1, s:read_some(buf))))

local f = spawn(function()
  this_fiber.disable_interruption()
  local n = s:read_some(buf)
  print('read returned', tostring(buf:slice(1, n)))
  this_fiber.restore_interruption()
  this_fiber.yield() -- an interruption point: the fiber ends here
  print('not reached')
end)
this_fiber.yield() -- f now waits in read_some
f:interrupt()
this_fiber.yield()
print('after interrupt')
c:write_some('two')
f:join()
print('interrupted at its next point', f.interruption_caught)

-- the same fiber record shape again (a fresh fiber), interruption enabled
local g = spawn(function() outcome('enabled read:', s.read_some, s, buf) end)
this_fiber.yield()
g:interrupt()
g:join()

-- interruption disabled and restored before the wait: an ordinary wait
local h = spawn(function()
  this_fiber.disable_interruption()
  this_fiber.restore_interruption()
  outcome('restored read:', s.read_some, s, buf)
end)
this_fiber.yield()
h:interrupt()
h:join()

c:write_some('three')
print('next read', tostring(buf:slice(1, s:read_some(buf))))
c:close()
s:close()
