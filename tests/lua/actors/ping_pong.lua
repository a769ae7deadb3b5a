-- Two actors on one thread: '.' spawns this same file as a worker.
local inbox = require 'inbox'
if _CONTEXT == 'main' then
  local ch = spawn_vm('.')
  print('main: spawned', getmetatable(ch))
  ch:send({ from = inbox, n = 1, list = { 1, 2, { x = 'y' } } })
  print('main: send returned (worker received)')
  local reply = inbox:receive()
  print('main: got', reply.n, reply.text)
  ch:send({ from = inbox, n = 2, stop = true })
  print('main: done')
else
  print('worker: context', _CONTEXT)
  while true do
    local m = inbox:receive()
    print('worker: got', m.n, #(m.list or {}), m.list and m.list[3].x)
    if m.stop then break end
    m.from:send({ n = m.n * 10, text = 'pong' })
  end
  print('worker: end')
end
