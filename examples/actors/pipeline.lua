-- A pipeline of actors on one thread: numbers flow through a squarer and a
-- summer; each stage is this same file, told its role by its first message.
local inbox = require 'inbox'

if _CONTEXT == 'worker' then
  local setup = inbox:receive()
  if setup.role == 'square' then
    -- forward n*n to the next stage until the source stops
    while true do
      local n = inbox:receive()
      if n == 'end' then setup.next:send('end') break end
      setup.next:send(n * n)
    end
  elseif setup.role == 'sum' then
    local total = 0
    while true do
      local n = inbox:receive()
      if n == 'end' then break end
      total = total + n
    end
    setup.report:send(total)
  end
  return
end

local sum = spawn_vm('.')
sum:send({ role = 'sum', report = inbox })
local square = spawn_vm('.')
square:send({ role = 'square', next = sum })
for n = 1, 10 do square:send(n) end
square:send('end')
print('sum of squares 1..10 =', inbox:receive())
