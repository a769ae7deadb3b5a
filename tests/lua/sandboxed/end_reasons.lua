-- A sandboxed actor's exit code is its own: the codes the runtime once
-- used to report its own reasons (65, 66, 67) arrive as plain exits. Only
-- the runtime's end frame, which a script cannot write, says 'memory';
-- it comes after every message the actor sent.
local inbox = require 'inbox'
for _, code in ipairs({ 65, 66, 67, 1, 0 }) do
  local ch = spawn_vm{ module = '/fixtures/ends', sandbox = { memory = 32 * 2^20 }, monitor = true }
  ch:send{ code = code }
  local n = inbox:receive()
  print(code, n.monitor, n.reason, n.code)
end
local ch = spawn_vm{ module = '/fixtures/ends', sandbox = { memory = 32 * 2^20 }, monitor = true }
ch:send{ bomb = 3, reply = inbox }
-- (Printed once the notice came: the sandbox's report of its memory
-- error is on the shared stderr by then, so the output's order is fixed.)
local got = {}
for i = 1, 4 do got[i] = inbox:receive() end
for _, m in ipairs(got) do
  if type(m) == 'table' then
    print('bomb', m.monitor, m.reason, m.code)
  else
    print('bomb', 'message', m)
  end
end
