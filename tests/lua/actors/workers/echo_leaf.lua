-- a leaf worker: './x' is refused, '../x' names a sibling
local inbox = require 'inbox'
print('leaf worker:', _CONTEXT, pcall(require, './sibling'))
print('leaf worker:', require('../sibling').value)
local back = inbox:receive()
back:send('leaf done')
