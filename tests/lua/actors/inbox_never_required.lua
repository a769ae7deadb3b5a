-- a worker that never requires 'inbox': its inbox closes when its main
-- fiber ends, so a send to it fails with channel_closed
if _CONTEXT == 'worker' then
  print('worker: ran without an inbox')
  return
end
local w = spawn_vm('.')
print('main:', pcall(w.send, w, 'hello'))
