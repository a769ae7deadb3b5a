-- Inside a sandbox the next frame is read as soon as one was decoded
-- (src/actor/sandboxed/inside.rs). Frames that arrive while no fiber
-- receives (one carrying an fd) come once and in order; a receive
-- interrupted while it waits takes nothing; the host closing the channel,
-- or the sandbox closing its inbox, with a frame read ahead, ends
-- receiving as before, and the sandbox ends normally.
local inbox = require 'inbox'
local pipe = require 'pipe'
for _, close_inbox in ipairs{ false, true } do
  print('close_inbox', close_inbox)
  local ch = spawn_vm{ module = '/fixtures/read_ahead', sandbox = {}, monitor = true }
  local gate_r, gate_w = pipe.pair()
  local gate = gate_r:release()
  ch:send{ reply = inbox, gate = gate, close_inbox = close_inbox }
  gate:close()
  local data_r, data_w = pipe.pair()
  data_w:write_some('carried')
  local input = data_r:release()
  ch:send{ n = 2, input = input }
  input:close()
  ch:send{ n = 3 }
  gate_w:write_some('g')
  local r = inbox:receive()
  print('while busy:', r.ns, r.text)
  print('interrupted:', inbox:receive().interrupted)
  ch:send{ n = 4 }
  print('after it:', inbox:receive().n)
  if close_inbox then ch:send{ n = 5 } else ch:close() end
  gate_w:write_some('g')
  print('then:', inbox:receive().after)
  local notice = inbox:receive()
  print(notice.monitor, notice.reason, notice.code)
end
