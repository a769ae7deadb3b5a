-- The raw send/receive paths (src/actor/raw_calls.rs): scalars go through
-- an address box cached per handle, everything else through the generic
-- copy; both must keep every rule of the slow path.
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then
      print('worker: receive ended with', m)
      return
    end
    if m == 'close inbox' then
      inbox:close()
    else
      back:send(m)
    end
  end
end
local w = spawn_vm('.')
w:send(inbox)
local function echo(v)
  w:send(v)
  return inbox:receive()
end
-- scalars (fast both ways), then a table (stashed on receive), in turns
print('scalars', echo(1), echo(-2.5), echo(true), echo(false), echo('') == '', echo('a\0b') == 'a\0b')
local t = echo({ 1, 'two', { x = 3 } })
print('table', t[1], t[2], t[3].x)
print('scalar after table', echo(42))
-- a table queued before the receive starts (inbox_take builds it), and
-- one arriving while the receiver waits (mailbox_poll builds it)
w:send({ queued = true })
this_fiber.yield()
print('queued table', inbox:receive().queued)
local got = spawn(function() return inbox:receive() end)
this_fiber.yield()
w:send({ waited = 'yes' })
print('waited table', got:join().waited)
-- a channel in a message still travels (slow path) after scalars
w:send(inbox)
print('channel', getmetatable(inbox:receive()))
-- two handles to one actor: closing one leaves the other's box working
local w2 = echo(w) -- a tx-channel to the worker itself, echoed back
print('same actor', w2 == w, echo(7))
w2:send(8)
print('second handle', inbox:receive())
w2:close()
print('closed handle', pcall(w2.send, w2, 1))
print('other handle', echo(9))
-- bad sends take the generic path and its errors
print('nil', pcall(w.send, w, nil))
print('function', pcall(w.send, w, print))
print('no value', pcall(w.send, w))
-- a string over the fast path's limit yields, is sent back to the
-- generic path and gets its error; the channel still works after it
print('string over the limit', pcall(w.send, w, string.rep('x', 64 * 2^20 + 1)))
print('after it', echo('ok'))
-- the destination inbox closed while this handle's box is cached
w:send('close inbox')
print('inbox closed', pcall(w.send, w, 1))
print('inbox closed, table', pcall(w.send, w, {}))
w:close()
print('after close', pcall(w.send, w, 1))
