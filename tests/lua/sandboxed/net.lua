-- Networking of a sandboxed actor. Without the network option no IP
-- socket can even be made; with network = { tcp_bind, tcp_connect } the
-- sandbox has a loopback interface of its own where a TCP echo works on
-- the granted ports, and Landlock refuses the other ports; nothing
-- outside the sandbox is reachable (no route). Pipes and unix socket
-- pairs work in every sandbox.
local inbox = require 'inbox'
local function run(sandbox)
  local ch = spawn_vm{ module = '/fixtures/net', sandbox = sandbox }
  ch:send{ port = 4242, other_port = 4343, reply = inbox }
  for _, line in ipairs(inbox:receive().lines) do print(line) end
end
print('-- network = { tcp_bind = { 4242 }, tcp_connect = { 4242 } }')
run{ network = { tcp_bind = { 4242 }, tcp_connect = { 4242 } } }
print('-- no network')
run{}
print('-- network = \'loopback\' (no TCP port)')
run{ network = 'loopback' }
