-- args: one two --three
-- system.arguments = {argv0, script, args...}
local system = require 'system'
local a = system.arguments
print(#a)
for i = 2, #a do print(i, a[i]) end
print(type(a[1]))
