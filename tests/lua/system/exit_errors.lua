-- exit argument validation
local system = require 'system'
local ge = require 'generic_error'
local ok, e = pcall(system.exit, 0, { force = 1 })
print(ok, e == ge.ENOTSUP)
ok, e = pcall(system.exit, 'x')
print(ok, e == ge.EINVAL)
print('still running')
