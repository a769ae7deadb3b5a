-- (module of lazy_code_at_limit.lua: required, and spawned as a worker)
if _CONTEXT == 'worker' then
  local inbox = require 'inbox'
  inbox:receive().back:send('ran')
  return
end
greeting = 'helper loaded'
