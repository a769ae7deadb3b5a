-- set_error raises the error in get; second satisfaction; EINVAL for nil
local generic_error = require 'generic_error'
local future_mod = require 'future'
local p, f = future_mod.new()
local ok, e = pcall(p.set_error, p, nil)
print(ok, e == generic_error.EINVAL, e.arg)
p:set_error('stored error')
print(pcall(f.get, f))
ok, e = pcall(p.set_value, p, 1)
print(ok, e.code, tostring(e.category), tostring(e))
ok, e = pcall(p.set_error, p, 'x')
print(ok, tostring(e))
local p2, f2 = future_mod.new()
local t = {}
spawn(function() p2:set_error(t) end)
local ok2, e2 = pcall(f2.get, f2)
print(ok2, rawequal(e2, t))
