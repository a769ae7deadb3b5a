-- a worker package: not a leaf, so './child' works
local inbox = require 'inbox'
print('pkg worker:', _CONTEXT, require('./child').value)
local back = inbox:receive()
back:send('pkg done')
