-- A fiber spinning on time.sleep(0) in a VM alone on its thread keeps
-- neither an actor it spawns on the thread from running nor the messages
-- between them from being delivered ('.' spawns this same file)
local inbox = require 'inbox'
local time = require 'time'
if _CONTEXT == 'main' then
  local got = false
  local spins = 0
  local spinner = spawn(function()
    while not got do
      time.sleep(0)
      spins = spins + 1
    end
  end)
  this_fiber.yield()
  local ch = spawn_vm('.')
  ch:send({ from = inbox })
  local reply = inbox:receive()
  got = true
  spinner:join()
  print('main: got', reply.text, 'while a fiber spun:', spins > 0)
  -- alone again: the spinner's loop runs in one step until it ends
  local n = 0
  spawn(function() for _ = 1, 1000 do time.sleep(0) n = n + 1 end end):join()
  print('main: 1000 sleep(0) done:', n)
else
  local m = inbox:receive()
  m.from:send({ text = 'pong' })
end
