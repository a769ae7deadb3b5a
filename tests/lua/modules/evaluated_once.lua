-- a module is evaluated once; every import gets the same table
local a = require '/fixtures/simple'
local b = require '/fixtures/simple'
print(rawequal(a, b))
a.value = 'changed'
print(require('/fixtures/simple').value)
print(rawequal(require('time'), require('time')))
