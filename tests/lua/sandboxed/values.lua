-- byte_span and ip.address values cross the sandbox boundary both ways
-- (the sandboxed actor need not have required 'ip' to get an address); a
-- number standing in for a descriptor stays a number and opens nothing.
local inbox = require 'inbox'
local ip = require 'ip'
local ch = spawn_vm{ module = '/fixtures/fd_user', sandbox = {} }
ch:send{ op = 'values', span = byte_span.append('bytes\0and more'), n = 3,
         ip = ip.address.new('192.0.2.7'), v6 = ip.address.new('fe80::1%7'), reply = inbox }
local r = inbox:receive()
print('in the sandbox:', r.span_type, #r.span, r.ip, r.ip_type, r.v6, r.n)
print('back:', getmetatable(r.back.span), tostring(r.back.span), #r.back.span)
print('back ip:', getmetatable(r.back.ip), r.back.ip, r.back.ip == ip.address.new('192.0.2.7'),
  r.back.v6, r.back.v6.scope_id)
-- A forged capability: a number where a descriptor would be.
ch:send{ op = 'pipe', input = 5, output = 6, reply = inbox }
print('forged fd:', inbox:receive().error)
-- In-process channels still refuse byte spans (as Emilua's do).
local idle = spawn_vm('/fixtures/idle')
print('in-process byte_span:', pcall(idle.send, idle, byte_span.new(1)))
print('in-process ip.address:', pcall(idle.send, idle, ip.address.new('::1')))
ch:close()
