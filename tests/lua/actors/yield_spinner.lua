-- Fibers that only call this_fiber.yield() never keep the other actors of
-- their thread from running: not a spinning master (its worker still
-- replies), not a spinning worker (the master still gets its reply and
-- ends the process, which ends the spinning workers too, on this thread
-- and on another).
-- '.' spawns this same file; the worker's mode comes in its first message.
local inbox = require 'inbox'
if _CONTEXT == 'main' then
  local got = false
  local spins = 0
  local spinner = spawn(function()
    while not got do
      this_fiber.yield()
      spins = spins + 1
    end
  end)
  this_fiber.yield()
  local echo = spawn_vm('.')
  echo:send({ from = inbox, mode = 'echo' })
  local reply = inbox:receive()
  got = true
  spinner:join()
  print('main: got', reply.text, 'while a fiber yielded:', spins > 0)

  -- A worker on this thread that yields for ever once it replied.
  local busy = spawn_vm('.')
  busy:send({ from = inbox, mode = 'spin' })
  print('main: busy worker says', inbox:receive().text)
  -- And one alone on a thread of its own.
  local far = spawn_vm({ module = '.', inherit_context = false })
  far:send({ from = inbox, mode = 'spin' })
  print('main: worker on its own thread says', inbox:receive().text)
  -- The master sleeps in the ring: only the host's turns can wake it.
  require('time').sleep(0.01)
  print('main: woke beside a yielding worker')
  print('main: exiting')
  require('system').exit(0)
else
  local m = inbox:receive()
  m.from:send({ text = m.mode == 'spin' and 'spinning' or 'pong' })
  if m.mode == 'spin' then
    while true do this_fiber.yield() end
  end
end
