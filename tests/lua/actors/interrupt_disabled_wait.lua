-- A fiber blocked in send or receive with interruption disabled is not
-- woken by interrupt(): its receipt or message ends the wait as usual,
-- and the interruption raises at its next interruption point once it
-- restores interruption. (send and receive register their interrupter
-- without looking at the fiber's state; interrupt() looks.)
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local back = inbox:receive()
  back:send('hello') -- held until the main fiber receives it
  while true do
    local ok, m = pcall(inbox.receive, inbox)
    if not ok then return end
    back:send('echo ' .. m)
  end
end

local function wait_then_yield(what, wait)
  return spawn(function()
    this_fiber.disable_interruption()
    print(what .. ' returned', wait())
    this_fiber.restore_interruption()
    this_fiber.yield() -- an interruption point: the fiber ends here
    print('not reached')
  end)
end

local w = spawn_vm('.')
w:send(inbox)

-- send: the worker takes the message only after its own send ended
local f = wait_then_yield('send', function() return w:send('x') end)
this_fiber.yield() -- f now waits in send
f:interrupt()
this_fiber.yield()
print('after interrupt')
print('main got', inbox:receive()) -- frees the worker, which takes 'x'
f:join()
print('send fiber interrupted', f.interruption_caught)
print('main got', inbox:receive())

-- receive: nothing is queued until the main fiber sends
local g = wait_then_yield('receive', function() return inbox:receive() end)
this_fiber.yield() -- g now waits in receive
g:interrupt()
this_fiber.yield()
print('after interrupt')
w:send('y')
g:join()
print('receive fiber interrupted', g.interruption_caught)
w:close()
