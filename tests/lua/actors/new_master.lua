-- new_master: only the master may hand the role over; the caller loses it
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m == 'try' then
    -- not the master: EPERM
    local ok, e = pcall(spawn_vm, { module = '.', new_master = true })
    print('worker:', ok, tostring(e))
  end
  return
end
local w = spawn_vm({ module = '.' })
w:send('try')
local m = spawn_vm({ module = '.', new_master = true })
m:send('done')
-- main is no longer the master
print('main:', pcall(spawn_vm, { module = '.', new_master = true }))
print('bad value:', pcall(spawn_vm, { module = '.', new_master = 'yes' }))
