-- exit: 3
-- system.exit ends the process while sandboxes still run, a detached one
-- included: both are killed with it (a detached sandbox never outlives
-- the process). Regression: the host's relay threads spun forever once
-- the process was over, and the process never exited.
local inbox = require 'inbox'
local a = spawn_vm{ module = '/fixtures/waits', sandbox = {} }
local b = spawn_vm{ module = '/fixtures/echo', subprocess = {} }
b:detach()
b:send{ text = 'ping', n = 0, reply = inbox }
print(inbox:receive().echo)
print('exiting')
require('system').exit(3)
