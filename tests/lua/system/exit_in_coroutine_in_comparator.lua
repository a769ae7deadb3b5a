-- a coroutine resumed inside a sort comparator cannot terminate the VM
-- either: system.exit raises there and the exit status is unchanged
local system = require 'system'
local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
  coroutine.wrap(function() system.exit(9) end)()
end)
print(ok, (tostring(err):gsub(':.*', '')))
print('still running')
